package campaign

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestGenerateDeterministic: a seed is a schedule; another seed is another.
func TestGenerateDeterministic(t *testing.T) {
	for _, sh := range []Shape{Short, Long} {
		for seed := uint64(1); seed <= 20; seed++ {
			require.Equal(t, Generate(seed, sh), Generate(seed, sh), "seed %d", seed)
		}
		require.NotEqual(t, Generate(1, sh).String(), Generate(2, sh).String())
	}
}

// TestGenerateWellFormed: every plan is one the runner can carry out.
func TestGenerateWellFormed(t *testing.T) {
	for _, sh := range []Shape{Short, Long} {
		for seed := uint64(1); seed <= 500; seed++ {
			p := Generate(seed, sh)
			require.Contains(t, []string{Quorum, Async, Sync}, p.Mode)
			require.Len(t, p.Ops, sh.Ops)
			require.NotEmpty(t, p.Faults)
			require.LessOrEqual(t, len(p.Faults), sh.MaxFaults)
			for _, op := range p.Ops {
				require.Contains(t, Sites, op.Site)
				if op.Kind == RacePush {
					require.Contains(t, Sites, op.Other)
					require.NotEqual(t, op.Site, op.Other)
				}
				if op.Kind == APIMove && op.Target == "-" {
					require.NotEqual(t, "main", op.Branch, "main is never deleted")
				}
			}
			last := 0
			for _, f := range p.Faults {
				require.GreaterOrEqual(t, f.AtOp, last, "faults in op order")
				require.Less(t, f.AtOp, sh.Ops, "a fault begins while the client runs")
				last = f.AtOp
				require.Positive(t, f.For)
				require.LessOrEqual(t, f.For, max(2*sh.MaxFor+2*time.Second, sh.LongFor), "a fault is bounded")
				require.Less(t, f.After, maxAfter)
				if f.Kind == KillEtcd || f.Kind == PauseEtcd {
					require.Empty(t, f.Site)
				} else {
					require.Contains(t, Sites, f.Site)
				}
			}
		}
	}
}

// TestGenerateCovers: the long shape's first 60 seeds reach every mode,
// operation and fault.
func TestGenerateCovers(t *testing.T) {
	modes, ops, faults := map[string]bool{}, map[OpKind]bool{}, map[FaultKind]bool{}
	for seed := uint64(1); seed <= 60; seed++ {
		p := Generate(seed, Long)
		modes[p.Mode] = true
		for _, op := range p.Ops {
			ops[op.Kind] = true
		}
		for _, f := range p.Faults {
			faults[f.Kind] = true
		}
	}
	require.Len(t, modes, 3)
	require.Len(t, ops, int(numOpKinds))
	require.Len(t, faults, int(numFaultKinds))
}

func TestRequired(t *testing.T) {
	require.Equal(t, 2, Plan{Mode: Quorum, Acks: 2}.Required())
	require.Equal(t, 1, Plan{Mode: Async}.Required())
	require.Equal(t, 3, Plan{Mode: Sync}.Required())
}
