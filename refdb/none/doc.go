// Package none is the refdb backend that checks nothing: every valid CAS
// succeeds whatever the refs hold, for single-site setups that want
// sitesync's replication without a ref database.
//
// It offers NO split-brain protection: two sites writing the same ref both
// succeed and their histories diverge. Records are kept in this process's
// memory only so that Get, List and versions behave sensibly while it runs;
// they are lost on restart (versions start again at 0), so with this backend
// a site's own repositories are the only truth. Safe for concurrent use.
package none
