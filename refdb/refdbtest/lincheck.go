package refdbtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

// linKeys is the number of refs the clients share: few enough that batches
// collide all the time, and the model state stays a comparable array.
const linKeys = 4

// linState is the model: value and version of each shared ref.
type linState [linKeys]struct {
	Value   string
	Version uint64
}

type linUpdate struct {
	Key      int
	Old, New string
}

type linInput struct {
	Read    bool
	Updates []linUpdate // CAS only
}

type linOutcome int

const (
	outOK       linOutcome = iota
	outConflict            // *ConflictError, Conflicts names the refs
	outUnknown             // any other error: applied or not, at any time after the call
)

type linOutput struct {
	Outcome   linOutcome
	Read      linState          // Read: what Get returned
	Conflicts map[int]linRecord // conflict: reported current record per mismatching key
	Versions  []uint64          // ok CAS: the versions returned per update
}

type linRecord struct {
	Value   string
	Version uint64
}

// LinOptions shape CheckLinearizable's workload.
type LinOptions struct {
	Clients      int           // concurrent clients, each with its own Store; default 8
	OpsPerClient int           // default 250 (8 × 250 = 2,000 operations)
	OpTimeout    time.Duration // deadline of one call; default 10s
	Seed         uint64
	// During, if set, runs while the clients do (e.g. kill and restart the
	// server); the history is checked after both are done.
	During func()
}

func linRef(k int) string { return fmt.Sprintf("refs/heads/shared-%d", k) }

// CheckLinearizable runs clients that Get and CAS batches of one to three of
// four shared refs (with stale expectations on purpose, and some deletes),
// records the history and checks it with porcupine against a sequential
// model of the refdb contract: a successful CAS moved every ref from Old and
// bumped each version by one; a conflict named exactly the refs whose value
// differed, with their current value and version; a read saw one state. A
// call that failed otherwise may have taken effect at any later time.
// newClient is called once per client.
func CheckLinearizable(t *testing.T, newClient func(tb testing.TB) refdb.Store, o LinOptions) {
	t.Helper()
	if o.Clients == 0 {
		o.Clients = 8
	}
	if o.OpsPerClient == 0 {
		o.OpsPerClient = 250
	}
	if o.OpTimeout == 0 {
		o.OpTimeout = 10 * time.Second
	}
	project := Project(t)
	stores := make([]refdb.Store, o.Clients)
	for i := range stores {
		stores[i] = newClient(t)
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		wg      sync.WaitGroup
	)
	if o.During != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.During()
		}()
	}
	for c := range o.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ops := linClient(stores[c], project, c, o, now)
			mu.Lock()
			history = append(history, ops...)
			mu.Unlock()
		}()
	}
	wg.Wait()

	counts := map[string]int{}
	for _, op := range history {
		in, out := op.Input.(linInput), op.Output.(linOutput)
		switch {
		case in.Read:
			counts["read"]++
		case out.Outcome == outOK:
			counts["cas ok"]++
		case out.Outcome == outConflict:
			counts["cas conflict"]++
		default:
			counts["cas unknown"]++
		}
	}
	t.Logf("%d operations in %v: %v", len(history), time.Since(start).Round(time.Millisecond), counts)

	if counts["cas ok"] == 0 || counts["cas conflict"] == 0 {
		t.Fatalf("workload too tame to mean anything: %v", counts)
	}
	if res, path := checkHistory(history); res != porcupine.Ok {
		t.Fatalf("history is not linearizable (%s); visualization: %s", res, path)
	}
}

// checkHistory runs porcupine; on failure it writes a visualization and
// returns its path.
func checkHistory(history []porcupine.Operation) (porcupine.CheckResult, string) {
	model := linModel()
	res, info := porcupine.CheckOperationsVerbose(model, history, 5*time.Minute)
	if res == porcupine.Ok {
		return res, ""
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("refdb-lin-%d.html", time.Now().UnixNano()))
	_ = porcupine.VisualizePath(model, info, path)
	return res, path
}

func linClient(s refdb.Store, project string, c int, o LinOptions, now func() int64) []porcupine.Operation {
	rng := rand.New(rand.NewPCG(o.Seed, uint64(c)))
	var view [linKeys]string
	for i := range view {
		view[i] = refmove.ZeroID
	}
	refs := make([]string, linKeys)
	for i := range refs {
		refs[i] = linRef(i)
	}
	ops := make([]porcupine.Operation, 0, o.OpsPerClient)
	for i := range o.OpsPerClient {
		ctx, cancel := context.WithTimeout(context.Background(), o.OpTimeout)
		if rng.IntN(10) < 3 {
			call := now()
			recs, err := s.Get(ctx, project, refs...)
			ret := now()
			cancel()
			if err != nil {
				continue // a failed read says nothing; leave it out
			}
			var st linState
			for k, r := range recs {
				st[k].Value, st[k].Version = r.Value, r.Version
				view[k] = r.Value
			}
			ops = append(ops, porcupine.Operation{ClientId: c, Input: linInput{Read: true}, Call: call, Output: linOutput{Read: st}, Return: ret})
			continue
		}
		keys := rng.Perm(linKeys)[:1+rng.IntN(3)]
		in := linInput{}
		b := refdb.Batch{Txn: fmt.Sprintf("c%d-%d", c, i), Site: fmt.Sprintf("site-%d", c)}
		for _, k := range keys {
			nv := SHA(uint64(c+1)<<32 | uint64(i+1))
			if rng.IntN(8) == 0 {
				nv = refmove.ZeroID
			}
			in.Updates = append(in.Updates, linUpdate{Key: k, Old: view[k], New: nv})
			b.Updates = append(b.Updates, refdb.Update{Ref: linRef(k), Old: view[k], New: nv})
		}
		call := now()
		recs, err := s.CAS(ctx, project, b)
		ret := now()
		cancel()
		out := linOutput{}
		var ce *refdb.ConflictError
		switch {
		case err == nil:
			for j, u := range in.Updates {
				out.Versions = append(out.Versions, recs[j].Version)
				view[u.Key] = u.New
			}
		case errors.As(err, &ce):
			out.Outcome = outConflict
			out.Conflicts = map[int]linRecord{}
			for _, rc := range ce.Refs {
				var k int
				if _, serr := fmt.Sscanf(strings.TrimPrefix(rc.Ref, "refs/heads/shared-"), "%d", &k); serr != nil {
					panic(rc.Ref)
				}
				out.Conflicts[k] = linRecord{rc.Current.Value, rc.Current.Version}
				view[k] = rc.Current.Value
			}
		default:
			out.Outcome = outUnknown
			ret = math.MaxInt64 // may take effect at any time later
		}
		ops = append(ops, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
	}
	return ops
}

func linModel() porcupine.Model {
	nm := &porcupine.NondeterministicModel{
		Init: func() []interface{} {
			var st linState
			for i := range st {
				st[i].Value = refmove.ZeroID
			}
			return []interface{}{st}
		},
		Step: func(state, input, output interface{}) []interface{} {
			st, in, out := state.(linState), input.(linInput), output.(linOutput)
			if in.Read {
				if st == out.Read {
					return []interface{}{st}
				}
				return nil
			}
			matches := true
			for _, u := range in.Updates {
				if st[u.Key].Value != u.Old {
					matches = false
				}
			}
			applied := st
			for _, u := range in.Updates {
				applied[u.Key].Value = u.New
				applied[u.Key].Version++
			}
			switch out.Outcome {
			case outOK:
				if !matches {
					return nil
				}
				for j, u := range in.Updates {
					if out.Versions[j] != applied[u.Key].Version {
						return nil
					}
				}
				return []interface{}{applied}
			case outConflict:
				named := 0
				for _, u := range in.Updates {
					got, ok := out.Conflicts[u.Key]
					mismatch := st[u.Key].Value != u.Old
					if ok != mismatch {
						return nil // a mismatching ref not named, or a matching one named
					}
					if ok {
						named++
						if got.Value != st[u.Key].Value || got.Version != st[u.Key].Version {
							return nil
						}
					}
				}
				if named == 0 || named != len(out.Conflicts) {
					return nil
				}
				return []interface{}{st}
			default:
				if matches {
					return []interface{}{st, applied}
				}
				return []interface{}{st}
			}
		},
		Hash: func(state interface{}) uint64 {
			h := fnv.New64a()
			for _, r := range state.(linState) {
				_, _ = h.Write([]byte(r.Value))
				_, _ = fmt.Fprint(h, r.Version)
			}
			return h.Sum64()
		},
		DescribeOperation: func(input, output interface{}) string {
			in, out := input.(linInput), output.(linOutput)
			if in.Read {
				return fmt.Sprintf("get -> %s", describeState(out.Read))
			}
			var b strings.Builder
			b.WriteString("cas")
			for _, u := range in.Updates {
				fmt.Fprintf(&b, " %d:%s→%s", u.Key, short(u.Old), short(u.New))
			}
			switch out.Outcome {
			case outOK:
				fmt.Fprintf(&b, " -> ok %v", out.Versions)
			case outConflict:
				b.WriteString(" -> conflict")
				for k, r := range out.Conflicts {
					fmt.Fprintf(&b, " %d=%s@%d", k, short(r.Value), r.Version)
				}
			default:
				b.WriteString(" -> unknown")
			}
			return b.String()
		},
		DescribeState: func(state interface{}) string { return describeState(state.(linState)) },
	}
	return nm.ToModel()
}

func short(sha string) string { return strings.TrimLeft(sha, "0") + "." }

func describeState(st linState) string {
	var parts []string
	for k, r := range st {
		parts = append(parts, fmt.Sprintf("%d=%s@%d", k, short(r.Value), r.Version))
	}
	return strings.Join(parts, " ")
}
