using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.ExceptionServices;

namespace IlgpuDdw.Runtime;

/// <summary>The traced launch path used by the generated launcher wrappers and by traced custom kernels.</summary>
public sealed partial class KernelSet
{
    private readonly Dictionary<MethodInfo, Delegate> _traced = new();

    /// <summary>Whether launchers report to the device's tracer (a tracer is set, or the device is a dry run).</summary>
    private bool Tracing => _device.Tracer is not null || _device.IsDryRun;

    /// <summary>The real launcher of an implicitly grouped kernel and its group size; null (nothing to launch) on a dry run.</summary>
    private TLauncher? TraceImplicit<TLauncher>(Delegate kernel, out int groupSize) where TLauncher : Delegate
    {
        if (_device.IsDryRun)
        {
            groupSize = Device.GpuGroupSize;
            return null;
        }
        var launcher = LoadImplicit<TLauncher>(kernel);
        groupSize = _groupSizes.TryGetValue(kernel.Method, out int g) ? g : 1;
        return launcher;
    }

    /// <summary>The real launcher of an explicitly grouped kernel; null on a dry run.</summary>
    private TLauncher? TraceExplicit<TLauncher>(Delegate kernel) where TLauncher : Delegate =>
        _device.IsDryRun ? null : LoadGrouped<TLauncher>(kernel);

    /// <summary>Starts a traced implicitly grouped launch of <paramref name="extent"/> threads in groups of <paramref name="groupSize"/>.</summary>
    private PendingLaunch BeginLaunch(AcceleratorStream stream, string kernel, string family, long extent, int groupSize, KernelCost? cost) =>
        Begin(stream, new LaunchRecord(kernel, family, false, extent, (extent + groupSize - 1) / groupSize, groupSize, cost));

    /// <summary>Starts a traced explicitly grouped launch.</summary>
    private PendingLaunch BeginLaunch(AcceleratorStream stream, string kernel, string family, KernelConfig config, KernelCost? cost) =>
        Begin(stream, new LaunchRecord(kernel, family, true, (long)config.GridDim.Size * config.GroupDim.Size, config.GridDim.Size, config.GroupDim.Size, cost));

    private PendingLaunch Begin(AcceleratorStream stream, LaunchRecord record)
    {
        long started = 0;
        switch (_device.Timing)
        {
            case LaunchTiming.Synchronized:
                _device.Accelerator.Synchronize();
                started = Stopwatch.GetTimestamp();
                break;
            case LaunchTiming.Events:
                record.Start = stream.AddProfilingMarker();
                break;
        }
        return new PendingLaunch(record, started);
    }

    /// <summary>Ends a traced launch: takes its time as <see cref="Device.Timing"/> says and reports it.</summary>
    private void EndLaunch(AcceleratorStream stream, PendingLaunch launch)
    {
        var record = launch.Record;
        switch (_device.Timing)
        {
            case LaunchTiming.Synchronized:
                _device.Accelerator.Synchronize();
                record.MeasuredUs = Stopwatch.GetElapsedTime(launch.Started).TotalMicroseconds;
                break;
            case LaunchTiming.Events:
                record.End = stream.AddProfilingMarker();
                _device.AddPendingTiming(record);
                break;
        }
        _device.Tracer?.OnLaunch(record);
    }

    private readonly record struct PendingLaunch(LaunchRecord Record, long Started);

    /// <summary>
    /// A traced launcher of type <typeparamref name="TLauncher"/> for a kernel loaded with <see cref="Load{TLauncher}"/>
    /// or <see cref="LoadExplicit{TLauncher}"/>: it reports the launch (no cost formula) and, except on a dry run,
    /// launches the real kernel. Cached per kernel.
    /// </summary>
    private TLauncher TracedCustom<TLauncher>(Delegate kernel, bool explicitlyGrouped) where TLauncher : Delegate
    {
        var method = kernel.Method;
        if (_traced.TryGetValue(method, out var cached))
            return (TLauncher)cached;
        var invoke = typeof(TLauncher).GetMethod("Invoke")!;
        var parameters = invoke.GetParameters().Select(p => Expression.Parameter(p.ParameterType, p.Name)).ToArray();
        if (parameters.Length < 2 || parameters[0].Type != typeof(AcceleratorStream))
            throw new ArgumentException($"A launcher type takes (AcceleratorStream, extent or KernelConfig, ...); {typeof(TLauncher)} does not.", nameof(TLauncher));
        var body = Expression.Call(Expression.Constant(this), typeof(KernelSet).GetMethod(nameof(LaunchCustom), BindingFlags.NonPublic | BindingFlags.Instance)!
                .MakeGenericMethod(typeof(TLauncher)),
            Expression.Constant(kernel), Expression.Constant(explicitlyGrouped),
            Expression.NewArrayInit(typeof(object), parameters.Select(p => Expression.Convert(p, typeof(object)))));
        var traced = Expression.Lambda<TLauncher>(body, parameters).Compile();
        _traced[method] = traced;
        return traced;
    }

    private void LaunchCustom<TLauncher>(Delegate kernel, bool explicitlyGrouped, object[] arguments) where TLauncher : Delegate
    {
        var stream = (AcceleratorStream)arguments[0];
        var method = kernel.Method;
        string name = $"{method.DeclaringType?.Name}.{method.Name}";
        string family = method.DeclaringType?.Name ?? "";
        PendingLaunch launch;
        TLauncher? real = null;
        if (explicitlyGrouped)
        {
            if (!_device.IsDryRun) real = LoadGrouped<TLauncher>(kernel);
            launch = BeginLaunch(stream, name, family, (KernelConfig)arguments[1], null);
        }
        else
        {
            real = TraceImplicit<TLauncher>(kernel, out int groupSize);
            long extent = arguments[1] switch
            {
                Index1D i => i.Size,
                Index2D i => i.Size,
                Index3D i => i.Size,
                var other => throw new ArgumentException($"An implicitly grouped launcher takes Index1D, Index2D or Index3D after the stream; got {other?.GetType().Name}."),
            };
            launch = BeginLaunch(stream, name, family, extent, groupSize, null);
        }
        try
        {
            real?.DynamicInvoke(arguments);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
        }
        EndLaunch(stream, launch);
    }
}
