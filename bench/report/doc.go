// Package report holds the figures of a benchmark run and renders them: every
// sample as JSON, a Markdown summary table, and PNG plots (latency CDFs,
// replication lag over time) drawn with gonum.org/v1/plot.
//
// A [Sample] is one measured latency: the acknowledgement of one update
// ([Ack]), the moment one peer site held it ([Visible]), or the moment the last
// peer did ([VisibleAll]), each counted from the moment the update was
// started, with the physical floor that latency could at best reach on the
// emulated links. [Summarize] groups samples by workload, target and metric and
// computes percentiles (nearest rank), throughput, the ratio to the floor and
// the ratio to a baseline target. Summaries are a pure function of the
// samples.
//
// Concurrency: a Report is a value; build it in one goroutine, then any number
// of goroutines may render it.
package report
