// What a training run is told (options) and what it reports (progress, result).
using SddIlgpu.Training.Distributed;
using SddIlgpu.Training.Metrics;

namespace SddIlgpu.Training;

/// <summary>How a run reports and where it stops.</summary>
public sealed record TrainerOptions
{
    /// <summary>Called after every logged step (progress display).</summary>
    public Action<StepRecord, TrainProgress>? OnStep { get; init; }

    /// <summary>Stop after this step even if the schedule runs longer (the checkpoint can be resumed).</summary>
    public int? StopAtStep { get; init; }

    /// <summary>Write the loss plot at the end (off in tests that do not need it).</summary>
    public bool WritePlot { get; init; } = true;

    /// <summary>Stop as soon as the loss is NaN or infinite.</summary>
    public bool StopOnDivergence { get; init; } = true;

    /// <summary>
    /// Checked after every step: once cancelled the run stops after the step in progress, saves its checkpoint and
    /// returns with <see cref="TrainResult.Interrupted"/> set (the CLI cancels it on SIGINT and SIGTERM).
    /// </summary>
    public CancellationToken Cancellation { get; init; }

    /// <summary>Let a new run replace the checkpoint, log and plot of another run in its output folder (all of them).</summary>
    public bool Overwrite { get; init; }

    /// <summary>
    /// The data-parallel group this process trains in (null: alone). Every rank runs the same trainer; only
    /// rank 0 calls <see cref="OnStep"/> and writes files.
    /// </summary>
    public ICollective? Collective { get; init; }
}

/// <summary>Where the run is: for the progress line (ETA).</summary>
public readonly record struct TrainProgress(int Step, int TotalSteps, double SecondsPerStep, double EtaSeconds);

/// <summary>What a run produced. CheckpointPath is null when no checkpoint of this run exists (a run that diverged before its first).</summary>
public sealed record TrainResult(
    int Steps, double FinalLoss, double? ValLoss, bool Diverged, double TokensPerSecond, double SecondsPerStep,
    string? CheckpointPath, string LogPath, string? PlotPath, IReadOnlyList<StepRecord> Log)
{
    /// <summary>True when <see cref="TrainerOptions.Cancellation"/> stopped the run before its last step.</summary>
    public bool Interrupted { get; init; }

    /// <summary>The step the checkpoint at <see cref="CheckpointPath"/> holds (after divergence, the last good one).</summary>
    public int? CheckpointStep { get; init; }
}
