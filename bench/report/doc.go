// Package report holds the figures of a benchmark run and renders them: every
// sample as JSON, a Markdown summary table, and PNG plots (latency CDFs,
// replication lag over time) drawn with gonum.org/v1/plot.
//
// A [Sample] is one measured latency: the acknowledgement of one update
// ([Ack]), the moment one peer site held it ([Visible]), or the moment the last
// peer did ([VisibleAll]), each counted from the moment the update was
// started, with the physical floor that latency could at best reach on the
// emulated links; or the bytes on the wire of one update ([Wire], [WireOut]),
// per peer, next to the raw size of its objects. [Summarize] groups samples by workload, target and metric and
// computes percentiles (nearest rank), throughput, the ratio to the floor and
// the ratio to a baseline target; for the wire metrics, byte percentiles and
// the ratio of wire to raw bytes. The Markdown summary puts the wire rows in a
// table of their own. Summaries are a pure function of the
// samples.
//
// Concurrency: a Report is a value; build it in one goroutine, then any number
// of goroutines may render it.
package report
