package campaign

import (
	"context"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sitesync/sitesync/refdb"
)

// refdbPrefix is the key prefix the cluster's sites use (refdb.prefix).
const refdbPrefix = "/sitesync"

// projectRange is the etcd key range of a project's refs, the layout of
// refdb/internal/keys (which this package cannot import):
// <prefix> "/r/" <project> 0x00 0x01 <ref>, for a project name without NUL
// bytes. ReadHistory cross-checks it with the store's own List.
func projectRange(prefix, project string) (start, end string) {
	base := prefix + "/r/" + project + "\x00"
	return base + "\x01", base + "\x02"
}

// ReadHistory reads every write of every ref of project from etcd: for each
// key, the current revision and then, one Get at a time, the revision
// before it (a key's previous write is the value at ModRevision-1), until
// its first. Nothing may have compacted etcd; a compacted revision is an
// error, not a shorter history.
func ReadHistory(ctx context.Context, cli *clientv3.Client, prefix, project string) (History, error) {
	start, end := projectRange(prefix, project)
	resp, err := cli.Get(ctx, start, clientv3.WithRange(end))
	if err != nil {
		return nil, fmt.Errorf("read refdb history of %q: %w", project, err)
	}
	h := History{}
	for _, kv := range resp.Kvs {
		ref := strings.TrimPrefix(string(kv.Key), start)
		var recs []Rec
		for {
			rec, err := refdb.DecodeRecord(ref, kv.Value)
			if err != nil {
				return nil, fmt.Errorf("read refdb history of %q: revision %d: %w", project, kv.ModRevision, err)
			}
			recs = append(recs, Rec{Rev: kv.ModRevision, Record: rec})
			if kv.Version <= 1 { // etcd counts a key's puts since its creation
				break
			}
			prev, err := cli.Get(ctx, string(kv.Key), clientv3.WithRev(kv.ModRevision-1))
			if err != nil {
				return nil, fmt.Errorf("read refdb history of %q %s at revision %d: %w", project, ref, kv.ModRevision-1, err)
			}
			if len(prev.Kvs) == 0 {
				return nil, fmt.Errorf("read refdb history of %q %s: gone at revision %d though its version is %d", project, ref, kv.ModRevision-1, kv.Version)
			}
			kv = prev.Kvs[0]
		}
		slices.Reverse(recs)
		h[ref] = recs
	}
	return h, nil
}

// Current is the last record of every ref of the history.
func (h History) Current() []refdb.Record {
	var out []refdb.Record
	for _, recs := range h {
		if len(recs) > 0 {
			out = append(out, recs[len(recs)-1].Record)
		}
	}
	slices.SortFunc(out, func(x, y refdb.Record) int { return strings.Compare(x.Ref, y.Ref) })
	return out
}
