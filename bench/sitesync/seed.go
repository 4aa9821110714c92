package sitesync

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sitesync/sitesync/bench/workload"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/txn"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/etcd"
)

// seed brings every site to seed (see the package doc).
func (t *Target) seed(ctx context.Context, seed workload.Seed) error {
	ctx, cancel := context.WithTimeout(ctx, seedTimeout)
	defer cancel()
	if err := t.createProject(ctx); err != nil {
		return err
	}
	want, err := t.refs(ctx, seed.Peers)
	if err != nil {
		return err
	}
	if seed.Origin != seed.Peers {
		// The workload's contract: the origin's refs are the peers'.
		got, err := t.refs(ctx, seed.Origin)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("the origin seed %q and the peer seed %q hold different refs", seed.Origin, seed.Peers)
		}
	}
	if !t.cfg.PushSeed {
		return t.seedDirect(ctx, seed, want)
	}
	url := t.origin().GitURL(t.project)
	for i := 0; i < len(want); i += SeedBatch {
		args := []string{"push", "--quiet", url}
		for _, r := range want[i:min(i+SeedBatch, len(want))] {
			id, ref, _ := strings.Cut(r, " ")
			args = append(args, id+":"+ref)
		}
		if _, err := t.cfg.Git.Run(ctx, seed.Peers, nil, args...); err != nil {
			return fmt.Errorf("push refs %d-%d of %d: %w", i+1, min(i+SeedBatch, len(want)), len(want), err)
		}
	}
	// Every site holds the seed refs once replication has settled.
	for _, site := range t.cfg.Topology.Sites {
		if err := t.waitRefs(ctx, site, want); err != nil {
			return err
		}
	}
	if seed.Origin != seed.Peers {
		if err := t.copyUnreachable(ctx, seed.Origin); err != nil {
			return err
		}
	}
	return nil
}

// seedDirect writes the seed without replicating it: every site's
// repository fetches the seed from disk (no hook runs: sitesync's hooks are
// configured only for the git processes it starts), the origin gets the
// origin-only objects, then the refdb gets one record per seed ref, written
// by the origin, in batches through the refdb's own etcd store. The result
// is what a replicated seed push leaves, without its cost (with 50 ms links,
// ~5 s per 100-ref push: a minute per thousand refs). Repositories first:
// the coordinator's catch-up only moves refs the refdb has records for, and
// finds every site already at them.
func (t *Target) seedDirect(ctx context.Context, seed workload.Seed, want []string) error {
	for _, site := range t.cfg.Topology.Sites {
		repo := t.Repo(site)
		if _, err := t.cfg.Git.Run(ctx, repo, nil, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", seed.Peers, "+refs/*:refs/*"); err != nil {
			return fmt.Errorf("site %q: %w", site, err)
		}
		if err := t.waitRefs(ctx, site, want); err != nil {
			return err
		}
	}
	if seed.Origin != seed.Peers {
		if err := t.copyUnreachable(ctx, seed.Origin); err != nil {
			return err
		}
	}
	store, err := etcd.Open(ctx, []string{t.c.Etcd().Addr}, etcd.Options{Log: t.log})
	if err != nil {
		return fmt.Errorf("refdb: %w", err)
	}
	defer store.Close()
	origin := t.cfg.Topology.Origin()
	for i := 0; i < len(want); i += SeedBatch {
		b := refdb.Batch{Txn: txn.New(origin, time.Now()), Site: origin}
		for _, r := range want[i:min(i+SeedBatch, len(want))] {
			id, ref, _ := strings.Cut(r, " ")
			b.Updates = append(b.Updates, refdb.Update{Ref: ref, Old: refmove.ZeroID, New: id})
		}
		if _, err := store.CAS(ctx, t.project, b); err != nil {
			return fmt.Errorf("refdb: seed refs %d-%d: %w", i+1, i+len(b.Updates), err)
		}
	}
	return nil
}

// createProject is PUT /api/v1/projects/{name} at the origin.
func (t *Target) createProject(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, t.apiURL(t.origin(), ""), nil)
	if err != nil {
		return err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Pending []string `json:"pending"`
		Error   string   `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("create project: %s: %s", resp.Status, body.Error)
	}
	if len(body.Pending) > 0 {
		t.log.Info("project pending at sites", "sites", body.Pending)
	}
	return nil
}

// refs lists "id ref" of every ref of the repository at dir, sorted.
func (t *Target) refs(ctx context.Context, dir string) ([]string, error) {
	out, err := t.cfg.Git.Run(ctx, dir, nil, "for-each-ref", "--format=%(objectname) %(refname)")
	if err != nil {
		return nil, err
	}
	var refs []string
	for line := range strings.Lines(out) {
		if line = strings.TrimSpace(line); line != "" {
			refs = append(refs, line)
		}
	}
	slices.Sort(refs)
	return refs, nil
}

// waitRefs polls site's repository until it holds exactly want.
func (t *Target) waitRefs(ctx context.Context, site string, want []string) error {
	repo := t.Repo(site)
	var got []string
	for {
		var err error
		if _, serr := os.Stat(filepath.Join(repo, "HEAD")); serr == nil {
			got, err = t.refs(ctx, repo)
			if err == nil && slices.Equal(got, want) {
				return nil
			}
		}
		timer := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("site %q holds %d of the %d seed refs: %w", site, len(got), len(want), ctx.Err())
		case <-timer.C:
		}
	}
}

// copyUnreachable packs the objects of the repository at src that none of
// its refs reach into the origin site's object store.
func (t *Target) copyUnreachable(ctx context.Context, src string) error {
	all, err := t.cfg.Git.Run(ctx, src, nil, "cat-file", "--batch-all-objects", "--batch-check=%(objectname)")
	if err != nil {
		return err
	}
	reach, err := t.cfg.Git.Run(ctx, src, nil, "rev-list", "--objects", "--all")
	if err != nil {
		return err
	}
	reachable := make(map[string]bool)
	for line := range strings.Lines(reach) {
		id, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		reachable[id] = true
	}
	var list strings.Builder
	n := 0
	for line := range strings.Lines(all) {
		if id := strings.TrimSpace(line); id != "" && !reachable[id] {
			list.WriteString(id + "\n")
			n++
		}
	}
	if n == 0 {
		return nil
	}
	base := filepath.Join(t.Repo(t.cfg.Topology.Origin()), "objects", "pack", "pack")
	if _, err := t.cfg.Git.Run(ctx, src, strings.NewReader(list.String()), "pack-objects", "--quiet", base); err != nil {
		return fmt.Errorf("write the origin-only objects: %w", err)
	}
	t.log.Info("origin-only objects written", "objects", n)
	return nil
}
