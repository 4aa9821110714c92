// Package backend opens the refdb.Store a refdb.Config names (tikv, etcd,
// embedded or none), instrumented with the refdb metrics. It is the one place
// that imports every backend, so that cmd and config need not.
package backend
