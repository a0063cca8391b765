// The SwiGLU feed-forward sub-layer of spec §3 and sdd_reference.ffn: up and gate projections, sdd-code's
// joint norm over [up | gate] (2F values, up first), s = up ⊙ silu(gate), the down projection (with
// down_norm for sdd-code, α for sdd-paper). Plain and sdd-code write up and gate into one (B·T, 2F) buffer; a device
// with fused FFN ops runs sdd-code's norm and SwiGLU as one pass each way (the same bits), and the normalised
// [up | gate] it never stores gets no buffer: (B·T, 2F) floats a layer, 768 MiB for baby-gpt at B = 64.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;

namespace SddIlgpu.Layers;

/// <summary>h (B·T, C) → Output (B·T, C) for one block.</summary>
public sealed class SwiGluFfn
{
    readonly OpSet ops;
    readonly int f;
    readonly Linear? up, gate;
    readonly SddLinear? upSdd, gateSdd;
    readonly Projection down;
    readonly RmsNorm? upGateNorm;

    /// <summary>The device's fused norm + SwiGLU ops when this layer has sdd-code's joint norm and the device has them.</summary>
    readonly IFusedFfnOps? fusedNorm;
    readonly Tensor? upGateLin, upOut, gateOut, dUp, dGate;
    readonly Tensor? upGate;
    readonly Tensor s, dS, dUpGate;

    public SwiGluFfn(ModelWeights weights, int block, int rows, Arena activations)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(activations);
        var c = weights.Config;
        ops = weights.Ops;
        f = c.FfnHidden;
        var p = $"blocks.{block}.ffn.";
        bool code = c.Linear == LinearKind.SddCode, paper = c.Linear == LinearKind.SddPaper;
        if (paper)
        {
            upSdd = new SddLinear(ops, weights[p + "w_up.weight"], weights[p + "w_up.alpha"], SddComposition.Paper, c.NormEps, activations, rows, p + "w_up");
            gateSdd = new SddLinear(ops, weights[p + "w_gate.weight"], weights[p + "w_gate.alpha"], SddComposition.Paper, c.NormEps, activations, rows, p + "w_gate");
            upOut = activations.Take((rows, f), p + "up");
            gateOut = activations.Take((rows, f), p + "gate");
            dUp = activations.Take((rows, f), p + "dUp");
            dGate = activations.Take((rows, f), p + "dGate");
        }
        else
        {
            up = new Linear(ops, weights[p + "w_up.weight"]);
            gate = new Linear(ops, weights[p + "w_gate.weight"]);
        }
        if (code)
        {
            upGateLin = activations.Take((rows, 2 * f), p + "upgate_lin");
            upGateNorm = new RmsNorm(ops, weights[p + "upgate_norm.weight"], 2 * f, 2 * f, c.NormEps, activations, rows, p + "upgate_norm");
            fusedNorm = ops.FusedFfn;
        }
        var downScale = code ? weights[p + "down_norm.weight"] : paper ? weights[p + "w_down.alpha"] : null;
        down = new Projection(ops, weights[p + "w_down.weight"], downScale, paper ? SddComposition.Paper : SddComposition.Code,
            c.NormEps, activations, rows, p + "w_down");
        if (fusedNorm is null)
            upGate = activations.Take((rows, 2 * f), p + "upgate");
        s = activations.Take((rows, f), p + "s");
        Output = activations.Take((rows, c.DModel), p + "out");
        dS = activations.Take((rows, f), p + "dS");
        dUpGate = activations.Take((rows, 2 * f), p + "dUpGate");
    }

    /// <summary>The sub-layer's output (B·T, C).</summary>
    public Tensor Output { get; }

    /// <summary>
    /// Arena elements the constructor takes; <paramref name="fusedFfn"/>: the device has <see cref="IFusedFfnOps"/>
    /// (<see cref="OpSet.FusedFfn"/> not null), so sdd-code's normalised [up | gate] is not stored.
    /// </summary>
    public static long ActivationLength(ModelConfig c, int rows, bool fusedFfn)
    {
        ArgumentNullException.ThrowIfNull(c);
        bool code = c.Linear == LinearKind.SddCode, paper = c.Linear == LinearKind.SddPaper;
        checked
        {
            long n = rows, f = c.FfnHidden;
            var f2 = 2 * c.FfnHidden;
            var total = paper ? 2 * SddLinear.ActivationLength(rows, c.FfnHidden) + 4 * n * f : 0;
            if (code)
                total += n * f2 + RmsNorm.ActivationLength(rows, f2, f2);
            total += Projection.ActivationLength(code || paper, rows, c.DModel);
            var upGate = code && fusedFfn ? 0 : n * f2;
            return total + upGate + n * f + n * c.DModel + n * f + n * f2;
        }
    }

    /// <summary>Output = ffn(h).</summary>
    public void Forward(Tensor h)
    {
        if (upSdd is not null)
        {
            upSdd.Forward(h, upOut!);
            gateSdd!.Forward(h, gateOut!);
            ops.Activation.ConcatLast(upOut!, gateOut!, upGate!);
        }
        else
        {
            var target = upGateLin ?? upGate!;
            up!.Forward(h, target, new MatrixLayout(2 * f));
            gate!.Forward(h, target, new MatrixLayout(2 * f, Offset: f));
        }
        if (fusedNorm is { } fused) // [up | gate] normalised row by row and not stored: the fused backward recomputes it
            fused.NormSwiGluForward(upGateLin!, upGateNorm!.Gain?.Value, null, upGateNorm.Rstd, s, upGateNorm.Eps);
        else
        {
            upGateNorm?.Forward(upGateLin!, upGate!);
            ops.Activation.SwiGluForward(upGate!, s);
        }
        down.Forward(s, Output);
    }

    /// <summary>dH (B·T, C) overwritten; parameter gradients accumulated.</summary>
    public void Backward(Tensor dOut, Tensor h, Tensor dH)
    {
        down.Backward(dOut, s, dS, accumulate: false);
        if (fusedNorm is { } fused)
            fused.SwiGluNormBackward(dS, upGateLin!, upGateNorm!.Gain?.Value, upGateNorm.Rstd, dUpGate, upGateNorm.Gain?.Grad);
        else
            ops.Activation.SwiGluBackward(dS, upGate!, dUpGate);
        if (upSdd is not null)
        {
            ops.Activation.SplitLast(dUpGate, dUp!, dGate!);
            Linear.BackwardWeights(h, (upSdd.Linear, upSdd.BackwardNorm(dUp!), new MatrixLayout(f)),
                (gateSdd!.Linear, gateSdd.BackwardNorm(dGate!), new MatrixLayout(f)));
            upSdd.BackwardInput(dH, accumulate: false);
            gateSdd.BackwardInput(dH, accumulate: true);
            return;
        }
        if (fusedNorm is null)
            upGateNorm?.Backward(dUpGate, upGateLin!, dUpGate);
        // Both weight gradients (one grouped GEMM: h is packed once), then both input gradients: h and dUpGate are read
        // while in cache.
        Linear.BackwardWeights(h, (up!, dUpGate, new MatrixLayout(2 * f)), (gate!, dUpGate, new MatrixLayout(2 * f, Offset: f)));
        up!.BackwardInput(dUpGate, new MatrixLayout(2 * f), dH, accumulate: false);
        gate!.BackwardInput(dUpGate, new MatrixLayout(2 * f, Offset: f), dH, accumulate: true);
    }
}
