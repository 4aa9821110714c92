package workload

import (
	"context"
	"fmt"

	"github.com/sitesync/sitesync/bench/report"
)

// PackChunk is the largest file of a pack workload's commit. Files of random
// content this size are what a large push of binary assets looks like.
const PackChunk = 4 << 20

// Pack runs the pack workload against t: count pushes of one commit each
// adding size bytes of new, incompressible content.
func Pack(ctx context.Context, cfg Config, t Target, seed string, size int64, count int) ([]report.Sample, error) {
	if size <= 0 {
		return nil, fmt.Errorf("pack workload: size %d", size)
	}
	c, err := newClient(ctx, cfg.Git, seed, clientDir(cfg, "pack", t.Name()))
	if err != nil {
		return nil, fmt.Errorf("pack workload: %w", err)
	}
	mt, err := newMeter(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("pack workload: %w", err)
	}
	var out []report.Sample
	for i := range count {
		var files []file
		for off, n := int64(0), 0; off < size; n++ {
			sz := min(size-off, PackChunk)
			files = append(files, file{
				path: fmt.Sprintf("bench/pack-%d/%03d.bin", i, n),
				size: sz,
				data: randomData(uint64(i)<<32 | uint64(n)),
			})
			off += sz
		}
		u, err := c.commit(ctx, fmt.Sprintf("bench: pack %d, %d bytes", i, size), files)
		if err != nil {
			return out, fmt.Errorf("pack workload: %w", err)
		}
		s, err := measure(ctx, cfg, t, mt, "pack", i, u)
		if err != nil {
			return out, err
		}
		out = append(out, s...)
	}
	return out, nil
}
