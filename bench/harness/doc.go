// Package harness composes a benchmark run: it prepares the seed
// repositories (a corpus's NoteDb replay, or a synthetic one), starts each
// system under test from them in turn (the git-protocol baselines by default;
// sitesync's targets are added as more [workload.Factory] values), runs the
// selected workloads against each over the same emulated links, and writes
// the report (bench/report): JSON with every sample, a Markdown summary and
// PNG plots, with the machine and link profile. It is what `sitesync bench
// push|pack|notedb` runs.
//
// Every (workload, target) pair gets a fresh target started from the same
// seed, and targets run one after the other, never at once, so they see the
// same machine and the same links.
//
// Concurrency: Run is one run; call it from one goroutine.
package harness
