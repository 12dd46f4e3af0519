using System.Diagnostics;

namespace IlgpuDdw.Cli.Reports;

/// <summary>Training progress on the console.</summary>
internal static class ProgressDisplay
{
    /// <summary>Progress: a live bar on a terminal, plain lines when redirected or under CI.</summary>
    public static T Run<T>(string title, Func<IProgress<TrainProgress>, T> work)
    {
        bool plain = Console.IsOutputRedirected || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));
        if (plain)
        {
            var last = Stopwatch.StartNew();
            var progress = new PlainProgress(p =>
            {
                if (p.Batch == p.Batches || last.Elapsed.TotalSeconds >= 15)
                {
                    last.Restart();
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{title}: epoch {p.Epoch + 1}/{p.Epochs} batch {p.Batch}/{p.Batches} loss {p.Loss:F4} acc {100 * p.Accuracy:F1}% {p.ImagesPerSecond:F1} img/s"));
                    if (p.Batch == p.Batches) Console.WriteLine(Evaluating(title, p));
                }
            });
            return work(progress);
        }
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title));
                result = work(new PlainProgress(p =>
                {
                    task.MaxValue = p.Batches * p.Epochs;
                    task.Value = p.Epoch * p.Batches + p.Batch;
                    task.Description = p.Batch == p.Batches
                        ? $"[yellow]{Markup.Escape(Evaluating(title, p))}[/]"
                        : Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                            $"{title} e{p.Epoch + 1}/{p.Epochs} loss {p.Loss:F3} acc {100 * p.Accuracy:F1}% {p.ImagesPerSecond:F0} img/s"));
                }));
            });
        return result;
    }

    /// <summary>
    /// The line shown once an epoch's last training batch is reported: the trainer evaluates on the test set next,
    /// which takes a while and reports nothing until the next epoch starts.
    /// </summary>
    internal static string Evaluating(string title, TrainProgress p) => string.Create(CultureInfo.InvariantCulture,
        $"{title}: epoch {p.Epoch + 1}/{p.Epochs} trained (loss {p.Loss:F4}, acc {100 * p.Accuracy:F1}%); evaluating on the test set ...");

    private sealed class PlainProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
