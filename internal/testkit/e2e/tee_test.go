package e2e_test

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/bench/link"
	"github.com/sitesync/sitesync/internal/testkit/cluster"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
	"github.com/sitesync/sitesync/internal/testkit/syncbuf"
)

// teeSize is the size of the tee test's pack. The issue asks 300 MiB; the
// default keeps the suite quick:
//
//	go test -run TestTee -v ./internal/testkit/e2e/ -args -tee-size=300
var teeSize = flag.Int("tee-size", 24, "MiB of incompressible data TestTee pushes")

// teeRate is the client's upload rate through its relay.
const teeRate = 20 << 20 // bytes/s

// blobSize is the size of each file of the big commit: many objects, each
// far under core.bigFileThreshold, as a real large push has.
const blobSize = 4 << 20

// TestTee: a client uploading a big incompressible pack through a link of
// teeRate to a: the peers receive the pack while it uploads (their
// quarantines hold most of it before the client has sent all of it), and
// b and c hold the new refs within 1.2× of the client's own push time.
func TestTee(t *testing.T) {
	requireGit(t)
	size := int64(*teeSize) << 20
	// The vote waits for the peers to finish indexing the pack after the
	// upload; give a big pack room on a slow machine.
	c := startCluster(t, cluster.Options{Sites: 3, Mode: "quorum", Acks: 2, Timeout: 60 * time.Second})
	a, b, cc := c.Site("a"), c.Site("b"), c.Site("c")
	env := gittest.Env(t)
	createProject(t, a, project)
	src := gittest.Generate(t, env, gittest.Shape{Commits: 3})
	mustPush(t, env, src, a.GitURL(project), "main")
	waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)
	genStart := time.Now()
	// Random blobs do not delta: say so, as a user with big binaries does,
	// so the client spends its time uploading, not searching for deltas.
	require.NoError(t, os.WriteFile(filepath.Join(src, "info", "attributes"), []byte("*.bin -delta\n"), 0o644))
	addBigCommit(t, env, src, size)
	newMain := revParse(t, env, src, "main")
	t.Logf("generated %d MiB of incompressible blobs in %v", size>>20, time.Since(genStart).Round(time.Millisecond))

	// The client's slow uplink: a relay in front of a's HTTP port.
	l, err := link.NewLink(link.Profile{Bandwidth: teeRate}, link.Profile{})
	require.NoError(t, err)
	relay, err := link.ListenTCP(link.Config{Listen: "127.0.0.1:0", Target: a.HTTPAddr, Link: l})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	relayDone := make(chan struct{})
	go func() { defer close(relayDone); _ = relay.Run(ctx) }()
	t.Cleanup(func() { cancel(); relay.Close(); <-relayDone })
	url := "http://" + relay.Addr().String() + "/" + project + ".git"

	// Sample the upload and the peers' quarantines while the push runs.
	type sample struct {
		at     time.Duration
		sent   int64 // client→a bytes the relay delivered
		qb, qc int64 // bytes in b's and c's quarantines
	}
	var (
		mu      sync.Mutex
		samples []sample
	)
	start := time.Now()
	stopSampling := make(chan struct{})
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			s := sample{at: time.Since(start), sent: int64(relay.Stats().AtoB.Bytes), qb: quarantineBytes(b, project), qc: quarantineBytes(cc, project)}
			mu.Lock()
			samples = append(samples, s)
			mu.Unlock()
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()
	// When b and c hold the new main: the read API waits for it.
	replicated := make([]time.Duration, 2)
	var wg sync.WaitGroup
	for i, s := range []*cluster.Site{b, cc} {
		wg.Go(func() {
			code, got := readRef(t, s, project, "refs/heads/main", newMain, 5*time.Minute)
			replicated[i] = time.Since(start)
			assert.Equal(t, 200, code, "site %s holds %s", s.Name, got)
		})
	}
	out, err := push(env, src, url, "main")
	pushTime := time.Since(start)
	require.NoError(t, err, "push through the slow link:\n%s", out)
	wg.Wait()
	close(stopSampling)
	<-samplerDone

	// The moment the client had sent everything: the relay's count reached
	// its final value.
	total := int64(relay.Stats().AtoB.Bytes)
	var before sample // the last sample before the upload ended
	sentAt := pushTime
	for _, s := range samples {
		if s.sent >= total {
			sentAt = s.at
			break
		}
		before = s
	}
	repl := max(replicated[0], replicated[1])
	var firstByte time.Duration // when the pack began to flow
	for _, s := range samples {
		if s.sent > 1<<20 {
			firstByte = s.at
			break
		}
	}
	t.Logf("the first MiB of the request crossed the link at ~%v: upload ~%v (%.1f MiB/s)", firstByte.Round(time.Millisecond),
		(sentAt - firstByte).Round(time.Millisecond), float64(total)/(1<<20)/(sentAt-firstByte).Seconds())
	t.Logf("after the last byte was sent: b and c hold the write %v later", (repl - sentAt).Round(time.Millisecond))
	t.Logf("pack %d MiB at %s: request %d bytes; client done sending at ~%v, push returned at %v; b has it at %v, c at %v (%.2f× the push)",
		size>>20, link.FormatRate(teeRate), total, sentAt.Round(time.Millisecond), pushTime.Round(time.Millisecond),
		replicated[0].Round(time.Millisecond), replicated[1].Round(time.Millisecond), float64(repl)/float64(pushTime))
	t.Logf("at %v, with %.0f%% of the request sent, b's quarantine held %.0f%% and c's %.0f%% of the pack",
		before.at.Round(time.Millisecond), pct(before.sent, total), pct(before.qb, size), pct(before.qc, size))
	for _, s := range c.Sites() {
		t.Logf("site %s: peak RSS (VmHWM) %d MiB", s.Name, peakRSS(s.Pid())>>20)
	}

	assert.GreaterOrEqual(t, min(before.qb, before.qc), size/2,
		"the peers should hold most of the pack before the client finishes sending it (b %d, c %d of %d bytes)", before.qb, before.qc, size)
	assert.LessOrEqual(t, float64(repl), 1.2*float64(pushTime),
		"replication took %v, the client's push %v", repl, pushTime)
	waitRefs(t, env, project, env.Refs(t, src), c.Sites()...)
}

func pct(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return 100 * float64(n) / float64(of)
}

// addBigCommit adds a commit on main of the bare repository at dir with
// size bytes of random (incompressible) data in blobSize files, streamed
// into git fast-import.
func addBigCommit(tb testing.TB, env *gittest.GitEnv, dir string, size int64) {
	tb.Helper()
	// Random data does not compress: do not let fast-import try.
	cmd := exec.Command("git", "-C", dir, "-c", "pack.compression=0", "fast-import", "--quiet")
	cmd.Env = env.Vars()
	stdin, err := cmd.StdinPipe()
	require.NoError(tb, err)
	out := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(tb, cmd.Start())
	w := bufio.NewWriterSize(stdin, 1<<20)
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, blobSize)
	n := int((size + blobSize - 1) / blobSize)
	for i := range n {
		chunk := min(int64(blobSize), size-int64(i)*blobSize)
		_, _ = rng.Read(buf[:chunk]) // never fails
		fmt.Fprintf(w, "blob\nmark :%d\ndata %d\n", i+1, chunk)
		w.Write(buf[:chunk])
		w.WriteString("\n")
	}
	msg := fmt.Sprintf("%d MiB of random data\n", size>>20)
	fmt.Fprintf(w, "commit refs/heads/main\ncommitter Test Committer <committer@example.com> 1900000000 +0000\ndata %d\n%sfrom refs/heads/main^0\n", len(msg), msg)
	for i := range n {
		fmt.Fprintf(w, "M 100644 :%d big/blob-%03d.bin\n", i+1, i)
	}
	require.NoError(tb, w.Flush())
	require.NoError(tb, stdin.Close())
	require.NoError(tb, cmd.Wait(), "git fast-import: %s", out.String())
}
