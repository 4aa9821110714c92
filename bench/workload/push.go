package workload

import (
	"context"
	"fmt"
	"strings"

	"github.com/sitesync/sitesync/bench/report"
)

// PushBytes is the size of the one file each small push adds: a typical
// source change.
const PushBytes = 2 << 10

// Push runs the push workload against t: count pushes of one small commit
// each to one branch of the project at the origin. seed is the repository
// every site of t started from.
func Push(ctx context.Context, cfg Config, t Target, seed string, count int) ([]report.Sample, error) {
	c, err := newClient(ctx, cfg.Git, seed, clientDir(cfg, "push", t.Name()))
	if err != nil {
		return nil, fmt.Errorf("push workload: %w", err)
	}
	mt, err := newMeter(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("push workload: %w", err)
	}
	var out []report.Sample
	for i := range count {
		line := fmt.Sprintf("push %d of the push workload\n", i)
		content := strings.Repeat(line, PushBytes/len(line)+1)[:PushBytes]
		u, err := c.commit(ctx, fmt.Sprintf("bench: push %d", i), []file{{
			path: fmt.Sprintf("bench/push-%d.txt", i), size: int64(len(content)), data: strings.NewReader(content),
		}})
		if err != nil {
			return out, fmt.Errorf("push workload: %w", err)
		}
		// A small push is measured against the small-update floors.
		u.Bytes = 0
		s, err := measure(ctx, cfg, t, mt, "push", i, u)
		if err != nil {
			return out, err
		}
		out = append(out, s...)
	}
	return out, nil
}
