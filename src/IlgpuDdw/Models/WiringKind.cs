namespace IlgpuDdw.Wiring;

/// <summary>How the nodes of a stage are connected (DESIGN §1).</summary>
public enum WiringKind
{
    /// <summary>The backbone as published: node j reads node j−1 and the stage output is the last node.</summary>
    Chain,

    /// <summary>
    /// The complete DAG over the nodes 0..n−1 and the output node n, with one learned static scalar per edge
    /// (weight sigmoid(w)) and no router.
    /// </summary>
    Dense,

    /// <summary>
    /// Dense's edges with per-sample weights written by the routers (DDW): router i reads node i's output and writes
    /// row i of the stage's adjacency matrix.
    /// </summary>
    Dynamic,
}
