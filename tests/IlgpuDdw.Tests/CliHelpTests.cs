using System.CommandLine;
using IlgpuDdw.Cli;

namespace IlgpuDdw.Tests;

/// <summary>What <c>ddw ... --help</c> tells a new user.</summary>
public sealed class CliHelpTests
{
    private static IEnumerable<Command> All(Command c) => c.Subcommands.SelectMany(All).Prepend(c);

    [Fact]
    public void EveryOptionThatTakesAValue_ShowsItsDefault()
    {
        var missing = new List<string>();
        foreach (var command in All(CliApp.Build()))
            foreach (var option in command.Options)
            {
                if (option is System.CommandLine.Help.HelpOption or VersionOption || option.ValueType == typeof(bool) || option.Required) continue;
                if (!option.HasDefaultValue && !(option.Description ?? "").Contains("[default:", StringComparison.Ordinal))
                    missing.Add($"{command.Name} {option.Name}");
            }
        Assert.Empty(missing);
    }

    [Fact]
    public void BudgetHelp_ShowsEachBudgetsValues()
    {
        var (code, output, _) = CliTests.Run("train", "--help");
        Assert.Equal(0, code);
        Assert.Contains("smoke = resnet_mini at 28×28, 256/128 training/test images, 1 epoch, batch 32, lr 0.02", output);
        Assert.Contains("default = resnet_micro at 14×14, 32,768/2,000 training/test images, 1 epoch, batch 64, lr 0.1", output);
        Assert.Contains("full = resnet_mini at 28×28, all/all training/test images, 15 epochs, batch 128, lr 0.05", output);
        Assert.Contains("[default: the budget's: smoke 1, default 1, full 15]", output);
        Assert.Contains("[default: the budget's: smoke 256, default 32768, full all]", output);
        Assert.Contains("[default: the budget's: smoke resnet_mini, default resnet_micro, full resnet_mini]", output);
        Assert.Contains("runs/train-MODEL-WIRING-", output);
    }
}
