// Conformance of the per-row layer ops (RMS norm, RoPE, SwiGLU, concat/split, embedding, cross-entropy)
// against float64 loops written from spec §3 and the contracts in Ops/IOps.cs. Backward checks seed the
// parameter gradients with nonzero values: they must ACCUMULATE, activation gradients must OVERWRITE.
using SddIlgpu.Tensors;
using SddIlgpu.Tensors.Ops;
using static SddIlgpu.Training.Conformance.ErrorMeasure;

namespace SddIlgpu.Training.Conformance;

internal static class LayerOpChecks
{
    public static IEnumerable<(string Name, double Tolerance, Func<Probe, double> Run)> All()
    {
        yield return ("rms norm forward", 1e-5, p => Norm(p, gain: true, backward: false));
        yield return ("rms norm backward", 1e-4, p => Norm(p, gain: true, backward: true));
        yield return ("rms norm gainless fwd+bwd", 1e-4, p => Math.Max(Norm(p, false, false), Norm(p, false, true)));
        yield return ("rope forward", 1e-5, p => Rope(p, backward: false));
        yield return ("rope backward", 1e-5, p => Rope(p, backward: true));
        yield return ("swiglu forward", 1e-5, p => SwiGlu(p, backward: false));
        yield return ("swiglu backward", 1e-5, p => SwiGlu(p, backward: true));
        yield return ("concat/split last axis", 0, ConcatSplit);
        yield return ("embedding forward", 0, p => Embedding(p, backward: false));
        yield return ("embedding backward", 1e-6, p => Embedding(p, backward: true));
        yield return ("cross-entropy fwd+bwd", 1e-5, CrossEntropy);
    }

    static double Norm(Probe p, bool gain, bool backward)
    {
        const int R = 7, W = 36, G = 12;
        const float Eps = 1e-5f;
        float[] x = Probe.Random(R * W, 31, 2f), g = Probe.Random(G, 32), dY = Probe.Random(R * W, 33), dG0 = Probe.Random(G, 34);
        if (!gain)
            Array.Fill(g, 1f);
        double[] y = new double[x.Length], rstd = new double[R * W / G], dX = new double[x.Length], dG = ToDouble(dG0);
        for (var grp = 0; grp < rstd.Length; grp++)
        {
            double ms = 0, dot = 0;
            for (var i = 0; i < G; i++)
                ms += (double)x[grp * G + i] * x[grp * G + i];
            rstd[grp] = 1 / Math.Sqrt(ms / G + Eps);
            for (var i = 0; i < G; i++)
            {
                var n = x[grp * G + i] * rstd[grp];
                y[grp * G + i] = g[i] * n;
                dot += (double)g[i] * dY[grp * G + i] * n;
                dG[i] += dY[grp * G + i] * n;
            }
            for (var i = 0; i < G; i++)
                dX[grp * G + i] = rstd[grp] * (g[i] * dY[grp * G + i] - x[grp * G + i] * rstd[grp] * dot / G);
        }
        Tensor tx = p.Up(x, (R, W), "x"), ty = p.Zeros((R, W), "y"), tr = p.Zeros(rstd.Length, "rstd");
        var tg = gain ? p.Up(g, G, "gain") : null;
        p.Ops.Norm.Forward(tx, tg, ty, tr, G, Eps);
        if (!backward)
            return Worst((Probe.Down(ty), y), (Probe.Down(tr), rstd));
        var tdX = p.Zeros((R, W), "dX");
        var tdG = gain ? p.Up(dG0, G, "dGain") : null;
        p.Ops.Norm.Backward(p.Up(dY, (R, W), "dY"), tx, tg, tr, tdX, tdG, G);
        var err = MaxRelative(Probe.Down(tdX), dX);
        return tdG is null ? err : Math.Max(err, MaxRelative(Probe.Down(tdG), dG));
    }

    static double Rope(Probe p, bool backward)
    {
        const int B = 2, T = 5, H = 3, HS = 10;
        var table = RopeTable.Build(T, HS, 10000);
        var x = Probe.Random(B * T * H * HS, 41);
        var y = new double[x.Length];
        for (var row = 0; row < B * T * H; row++)
        {
            var t = row / H % T;
            for (var i = 0; i < HS / 2; i++)
            {
                double c = table[(t * HS / 2 + i) * 2], s = table[(t * HS / 2 + i) * 2 + 1];
                s = backward ? -s : s;
                double x1 = x[row * HS + i], x2 = x[row * HS + i + HS / 2];
                y[row * HS + i] = x1 * c - x2 * s;
                y[row * HS + i + HS / 2] = x1 * s + x2 * c;
            }
        }
        Tensor tx = p.Up(x, (B, T, H * HS), "x"), ty = p.Zeros((B, T, H * HS), "y"), tt = p.Up(table, (T, HS / 2, 2), "table");
        if (backward)
            p.Ops.Rope.Backward(tx, ty, tt, HS);
        else
            p.Ops.Rope.Forward(tx, ty, tt, HS);
        return MaxRelative(Probe.Down(ty), y);
    }

    static double SwiGlu(Probe p, bool backward)
    {
        const int R = 7, F = 19;
        float[] ug = Probe.Random(R * 2 * F, 51, 3f), dS = Probe.Random(R * F, 52);
        double[] s = new double[R * F], dUg = new double[ug.Length];
        for (var r = 0; r < R; r++)
            for (var f = 0; f < F; f++)
            {
                double up = ug[r * 2 * F + f], gate = ug[r * 2 * F + F + f], sig = 1 / (1 + Math.Exp(-gate));
                s[r * F + f] = up * gate * sig;
                dUg[r * 2 * F + f] = dS[r * F + f] * gate * sig;
                dUg[r * 2 * F + F + f] = dS[r * F + f] * up * sig * (1 + gate * (1 - sig));
            }
        var tug = p.Up(ug, (R, 2 * F), "upGate");
        if (!backward)
        {
            var ts = p.Zeros((R, F), "s");
            p.Ops.Activation.SwiGluForward(tug, ts);
            return MaxRelative(Probe.Down(ts), s);
        }
        var td = p.Zeros((R, 2 * F), "dUpGate");
        p.Ops.Activation.SwiGluBackward(p.Up(dS, (R, F), "dS"), tug, td);
        return MaxRelative(Probe.Down(td), dUg);
    }

    static double ConcatSplit(Probe p)
    {
        const int R = 5, Na = 7, Nb = 11;
        float[] a = Probe.Random(R * Na, 61), b = Probe.Random(R * Nb, 62);
        var y = new double[R * (Na + Nb)];
        for (var r = 0; r < R; r++)
        {
            for (var i = 0; i < Na; i++)
                y[r * (Na + Nb) + i] = a[r * Na + i];
            for (var i = 0; i < Nb; i++)
                y[r * (Na + Nb) + Na + i] = b[r * Nb + i];
        }
        var ty = p.Zeros((R, Na + Nb), "y");
        p.Ops.Activation.ConcatLast(p.Up(a, (R, Na), "a"), p.Up(b, (R, Nb), "b"), ty);
        Tensor a2 = p.Zeros((R, Na), "a2"), b2 = p.Zeros((R, Nb), "b2");
        p.Ops.Activation.SplitLast(ty, a2, b2);
        return Worst((Probe.Down(ty), y), (Probe.Down(a2), ToDouble(a)), (Probe.Down(b2), ToDouble(b)));
    }

    static double Embedding(Probe p, bool backward)
    {
        const int V = 13, C = 10;
        float[] tokens = [3, 0, 12, 3, 7, 3, 1, 12, 5, 0, 9], table = Probe.Random(V * C, 71), dY = Probe.Random(tokens.Length * C, 72), dT0 = Probe.Random(V * C, 73);
        var y = new double[tokens.Length * C];
        var dT = ToDouble(dT0);
        for (var n = 0; n < tokens.Length; n++)
            for (var c = 0; c < C; c++)
            {
                y[n * C + c] = table[(int)tokens[n] * C + c];
                dT[(int)tokens[n] * C + c] += dY[n * C + c];
            }
        var tt = p.Up(tokens, tokens.Length, "tokens");
        if (!backward)
        {
            var ty = p.Zeros((tokens.Length, C), "y");
            p.Ops.Embedding.Forward(tt, p.Up(table, (V, C), "table"), ty);
            return MaxRelative(Probe.Down(ty), y);
        }
        var td = p.Up(dT0, (V, C), "dTable");
        p.Ops.Embedding.Backward(tt, p.Up(dY, (tokens.Length, C), "dY"), td);
        return MaxRelative(Probe.Down(td), dT);
    }

    static double CrossEntropy(Probe p)
    {
        const int N = 9, V = 17;
        const float GradScale = 0.25f;
        var logits = Probe.Random(N * V, 81, 4f);
        float[] targets = [0, 16, 3, 3, 8, 11, 1, 16, 5];
        double[] losses = new double[N], dLogits = new double[N * V];
        for (var n = 0; n < N; n++)
        {
            var row = logits.AsSpan(n * V, V).ToArray();
            double max = row.Max(), sum = row.Sum(x => Math.Exp(x - max));
            losses[n] = Math.Log(sum) + max - row[(int)targets[n]];
            for (var v = 0; v < V; v++)
                dLogits[n * V + v] = (Math.Exp(row[v] - max) / sum - (v == (int)targets[n] ? 1 : 0)) * GradScale;
        }
        Tensor tl = p.Zeros(N, "losses"), tloss = p.Zeros(1, "loss"), td = p.Zeros((N, V), "dLogits");
        p.Ops.Loss.CrossEntropy(p.Up(logits, (N, V), "logits"), p.Up(targets, N, "targets"), tl, tloss, td, GradScale);
        return Worst((Probe.Down(tl), losses), (Probe.Down(tloss), [losses.Average()]), (Probe.Down(td), dLogits));
    }
}
