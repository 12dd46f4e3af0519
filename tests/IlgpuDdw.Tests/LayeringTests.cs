using System.Reflection;
using System.Reflection.Emit;
using IlgpuDdw.Kernels;

namespace IlgpuDdw.Tests;

/// <summary>
/// The folders of <c>src/IlgpuDdw</c> depend on each other one way: Kernels ← Runtime ← Distributed ← Tensor/Autograd ← Nn ←
/// Wiring ← Models ← Training/Verification, with Data and IO as leaves. Every type reference of the compiled
/// library is checked — signatures, fields, attributes and every token in every method body, lambdas included — so
/// a reference without a <c>using</c> (a fully qualified name, a type of the root namespace) is caught too.
/// </summary>
public sealed class LayeringTests
{
    /// <summary>Layer of each namespace under IlgpuDdw (the first segment after "IlgpuDdw"; "" = the root namespace).</summary>
    private static readonly Dictionary<string, int> Layers = new()
    {
        ["Runtime"] = 1,
        ["Distributed"] = 2,                 // communicators: below the tape, so that batch norm can reduce its sums
        [""] = 3, ["Autograd"] = 3,          // Tensor, IntTensor and the tape
        ["Nn"] = 4,
        ["Wiring"] = 5,
        ["Models"] = 6,
        ["Training"] = 7, ["Verification"] = 7,
    };

    /// <summary>Leaves: may be used by every layer and use no other part of the library.</summary>
    private static readonly HashSet<string> Leaves = ["Data", "IO"];

    private static string? Folder(Type t)
    {
        while (t.DeclaringType is not null) t = t.DeclaringType;
        if (t.Assembly != typeof(Tensor).Assembly) return null;
        var ns = t.Namespace ?? "";
        if (ns == "IlgpuDdw") return "";
        if (!ns.StartsWith("IlgpuDdw.", StringComparison.Ordinal)) return null; // e.g. compiler-generated helpers
        var rest = ns["IlgpuDdw.".Length..];
        int dot = rest.IndexOf('.');
        return dot < 0 ? rest : rest[..dot];
    }

    [Fact]
    public void Every_namespace_of_the_library_has_a_layer()
    {
        var unknown = typeof(Tensor).Assembly.GetTypes().Select(Folder).Where(f => f is not null)
            .Distinct().Where(f => !Layers.ContainsKey(f!) && !Leaves.Contains(f!)).ToArray();
        Assert.True(unknown.Length == 0, $"namespaces without a layer: {string.Join(", ", unknown)} (add them to LayeringTests.Layers)");
    }

    [Fact]
    public void No_type_references_a_higher_layer_or_a_leaf_references_the_library()
    {
        var violations = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var type in typeof(Tensor).Assembly.GetTypes())
        {
            var from = Folder(type);
            if (from is null) continue;
            foreach (var used in ReferencedTypes(type))
            {
                var to = Folder(used);
                if (to is null || to == from || Leaves.Contains(to) && !Leaves.Contains(from)) continue;
                bool ok = !Leaves.Contains(from) && Layers[to] <= Layers[from];
                if (!ok) violations.Add($"{Name(from)} → {Name(to)}: {type.FullName} uses {used.FullName}");
            }
        }
        Assert.True(violations.Count == 0, "upward references:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void The_kernels_assembly_depends_on_ILGPU_alone()
    {
        var refs = typeof(KernelAttribute).Assembly.GetReferencedAssemblies().Select(a => a.Name!)
            .Where(n => n != "ILGPU" && n != "netstandard" && n != "mscorlib" && !n.StartsWith("System", StringComparison.Ordinal)).ToArray();
        Assert.True(refs.Length == 0, $"IlgpuDdw.Kernels references {string.Join(", ", refs)}");
    }

    [Fact]
    public void Every_source_file_declares_the_namespace_of_its_folder()
    {
        var root = Path.Combine(RepositoryRoot(), "src", "IlgpuDdw");
        var wrong = new List<string>();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories))
        {
            var rel = Path.GetRelativePath(root, file);
            if (rel.StartsWith("obj" + Path.DirectorySeparatorChar) || rel.StartsWith("bin" + Path.DirectorySeparatorChar)) continue;
            var folder = rel.Contains(Path.DirectorySeparatorChar) ? rel[..rel.IndexOf(Path.DirectorySeparatorChar)] : "";
            var expected = folder == "" ? "IlgpuDdw" : "IlgpuDdw." + folder;
            var ns = File.ReadLines(file).FirstOrDefault(l => l.StartsWith("namespace ", StringComparison.Ordinal));
            if (ns is null) continue;
            var name = ns["namespace ".Length..].TrimEnd(';', ' ', '{');
            if (name != expected && !name.StartsWith(expected + ".", StringComparison.Ordinal))
                wrong.Add($"{rel}: namespace {name}, expected {expected}");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void The_checker_sees_references_inside_method_bodies()
    {
        // A lambda in a method body that names a Models type must be found: the check is not signature-only.
        var used = ReferencedTypes(typeof(Probe)).ToHashSet();
        Assert.Contains(typeof(Models.ModelZoo), used);
        Assert.Contains(typeof(Wiring.WiringConfig), used);
    }

    private static class Probe
    {
        public static Func<int> Lambda() => () => Models.ModelZoo.Names.Count;
        public static object Field() => new Wiring.WiringConfig();
    }

    private static string Name(string folder) => folder == "" ? "IlgpuDdw (root)" : folder;

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "IlgpuDdw.sln"))) return dir.FullName;
        throw new InvalidOperationException($"IlgpuDdw.sln not found above {AppContext.BaseDirectory}");
    }

    // ---- reference collection ------------------------------------------------------------------------

    private const BindingFlags All = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    /// <summary>Every type <paramref name="type"/> (and its nested types) names anywhere, generic arguments unfolded.</summary>
    internal static IEnumerable<Type> ReferencedTypes(Type type)
    {
        var found = new HashSet<Type>();
        void Add(Type? t)
        {
            if (t is null) return;
            if (t.HasElementType) { Add(t.GetElementType()); return; }
            if (t.IsGenericParameter) return;
            if (t.IsGenericType && !t.IsGenericTypeDefinition)
            {
                Add(t.GetGenericTypeDefinition());
                foreach (var a in t.GetGenericArguments()) Add(a);
                return;
            }
            found.Add(t);
        }

        var pending = new Stack<Type>([type]);
        while (pending.Count > 0)
        {
            var t = pending.Pop();
            foreach (var n in t.GetNestedTypes(All)) pending.Push(n);
            Add(t.BaseType);
            foreach (var i in t.GetInterfaces()) Add(i);
            foreach (var a in t.GetCustomAttributesData()) Add(a.AttributeType);
            foreach (var f in t.GetFields(All)) Add(f.FieldType);
            foreach (var p in t.GetProperties(All)) Add(p.PropertyType);
            foreach (var e in t.GetEvents(All)) Add(e.EventHandlerType);
            foreach (var m in t.GetMethods(All).Cast<MethodBase>().Concat(t.GetConstructors(All)))
            {
                if (m is MethodInfo mi) Add(mi.ReturnType);
                foreach (var p in m.GetParameters()) Add(p.ParameterType);
                foreach (var a in m.GetCustomAttributesData()) Add(a.AttributeType);
                var body = m.GetMethodBody();
                if (body is null) continue;
                foreach (var l in body.LocalVariables) Add(l.LocalType);
                foreach (var used in BodyReferences(m, body.GetILAsByteArray()!)) Add(used);
            }
        }
        found.Remove(type);
        return found;
    }

    private static IEnumerable<Type> BodyReferences(MethodBase method, byte[] il)
    {
        var module = method.Module;
        var typeArgs = method.DeclaringType is { IsGenericType: true } dt ? dt.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int pc = 0; pc < il.Length;)
        {
            short value = il[pc] == 0xFE ? (short)(0xFE00 | il[pc + 1]) : il[pc];
            pc += il[pc] == 0xFE ? 2 : 1;
            var op = OpCodesByValue[value];
            int size = op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, pc),
                _ => 4,
            };
            if (op.OperandType is OperandType.InlineField or OperandType.InlineMethod or OperandType.InlineType or OperandType.InlineTok)
            {
                int token = BitConverter.ToInt32(il, pc);
                MemberInfo? member = null;
                try { member = module.ResolveMember(token, typeArgs, methodArgs); }
                catch (ArgumentException) { }
                switch (member)
                {
                    case Type t: yield return t; break;
                    case FieldInfo f:
                        if (f.DeclaringType is not null) yield return f.DeclaringType;
                        yield return f.FieldType;
                        break;
                    case MethodBase m:
                        if (m.DeclaringType is not null) yield return m.DeclaringType;
                        if (m is MethodInfo mi)
                        {
                            yield return mi.ReturnType;
                            if (mi.IsGenericMethod) foreach (var a in mi.GetGenericArguments()) yield return a;
                        }
                        foreach (var p in m.GetParameters()) yield return p.ParameterType;
                        break;
                }
            }
            pc += size;
        }
    }
}
