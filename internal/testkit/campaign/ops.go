package campaign

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sitesync/sitesync/internal/testkit/cluster"
)

// do carries out operation i of the plan.
func (r *run) do(ctx context.Context, i int, op Op) {
	label := fmt.Sprintf("op %d", i)
	s := r.c.Site(op.Site)
	switch op.Kind {
	case Push:
		r.pushCommits(ctx, label, s, op.Branch, op.Commits, false)
	case ForcePush:
		r.pushCommits(ctx, label, s, op.Branch, op.Commits, true)
	case Delete:
		r.deleteBranch(ctx, label, s, op)
	case RacePush:
		r.racePush(ctx, label, s, r.c.Site(op.Other), op)
	case APIMove:
		r.apiMove(ctx, label, s, op)
	default:
		r.fail("%s: unknown kind %v", label, op.Kind)
	}
}

// valueAt is branch's value in s's repository ("" if it has none): what a
// client that just fetched from s would build on.
func (r *run) valueAt(ctx context.Context, s *cluster.Site, branch string) (string, error) {
	return r.git.value(ctx, repoDir(s), "refs/heads/"+branch)
}

// base is what a new commit on branch at s builds on: its value there, or
// main's for a branch s does not have.
func (r *run) base(ctx context.Context, s *cluster.Site, branch string) (string, error) {
	v, err := r.valueAt(ctx, s, branch)
	if err != nil || v != "" {
		return v, err
	}
	return r.valueAt(ctx, s, "main")
}

// pushCommits pushes n new commits on branch to s: on its value there, or
// (force) on that value's parent, with +.
func (r *run) pushCommits(ctx context.Context, label string, s *cluster.Site, branch string, n int, force bool) {
	base, err := r.base(ctx, s, branch)
	if err != nil {
		r.fail("%s: %v", label, err)
		return
	}
	if force && base != "" {
		if base, err = r.cl.parent(ctx, base); err != nil {
			r.fail("%s: %v", label, err)
			return
		}
	}
	c, err := r.cl.commits(ctx, base, n, label+" "+branch)
	if err != nil {
		r.fail("%s: %v", label, err)
		return
	}
	spec := c + ":refs/heads/" + branch
	if force {
		spec = "+" + spec
	}
	r.push(ctx, label, s, spec)
}

// deleteBranch pushes the deletion of one of s's branches (not main), or
// creates one if s has none.
func (r *run) deleteBranch(ctx context.Context, label string, s *cluster.Site, op Op) {
	refs, err := r.git.refs(ctx, repoDir(s))
	if err != nil {
		r.fail("%s: %v", label, err)
		return
	}
	var names []string
	for ref := range refs {
		if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok && b != "main" {
			names = append(names, b)
		}
	}
	if len(names) == 0 {
		r.pushCommits(ctx, label, s, Branches[1+int(op.Pick)%(len(Branches)-1)], 1, false)
		return
	}
	slices.Sort(names)
	r.push(ctx, label, s, ":refs/heads/"+names[int(op.Pick)%len(names)])
}

// racePush pushes two different commits on the same base of branch to s
// and to t at the same moment: at most one may win.
func (r *run) racePush(ctx context.Context, label string, s, t *cluster.Site, op Op) {
	base, err := r.base(ctx, s, op.Branch)
	if err != nil {
		r.fail("%s: %v", label, err)
		return
	}
	var cs [2]string
	for k := range cs {
		if cs[k], err = r.cl.commits(ctx, base, op.Commits, fmt.Sprintf("%s %s side %d", label, op.Branch, k)); err != nil {
			r.fail("%s: %v", label, err)
			return
		}
	}
	var wg sync.WaitGroup
	for k, site := range []*cluster.Site{s, t} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.push(ctx, label, site, cs[k]+":refs/heads/"+op.Branch)
		}()
	}
	wg.Wait()
}

// push runs git push --porcelain of specs to s, records each ref's outcome
// and returns how many refs s took.
func (r *run) push(ctx context.Context, label string, s *cluster.Site, specs ...string) int {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	start := time.Now()
	out, errOut, err := r.git.run2(ctx, r.cl.dir, nil, append([]string{"push", "--porcelain", s.GitURL(Project)}, specs...)...)
	end := time.Now()
	refs := parsePorcelain(out)
	r.mu.Lock()
	defer r.mu.Unlock()
	taken := 0
	for _, spec := range specs {
		dst := spec[strings.LastIndexByte(spec, ':')+1:]
		i := slices.IndexFunc(refs, func(p pushedRef) bool { return p.To == dst })
		outcome := ""
		if i < 0 {
			r.counts.Failed++
			outcome = "failed"
		} else {
			w := Write{Op: label, Via: "push", Site: s.Name, Ref: dst, Old: refs[i].Old(), New: refs[i].From, Start: start, End: end}
			if w.New == "" {
				w.New = ZeroSHA
			}
			switch refs[i].Outcome() {
			case Acked:
				taken++
				r.counts.Acked++
				outcome = "ok"
				r.writes = append(r.writes, w)
			case Refused:
				r.counts.Refused++
				outcome = "refused: " + refs[i].Summary
				r.refusals = append(r.refusals, w)
			default:
				r.counts.Failed++
				outcome = "failed: " + refs[i].Summary
			}
		}
		if outcome != "ok" && err != nil {
			outcome += fmt.Sprintf(" (%v: %s)", err, lastLine(errOut))
		}
		what := "delete " + dst
		if src := strings.TrimPrefix(spec[:len(spec)-len(dst)-1], "+"); src != "" {
			what = short(src) + " to " + dst
		}
		r.logf("%s: push %s at %s: %s (%v)", label, what, s.Name, outcome, end.Sub(start).Round(time.Millisecond))
	}
	return taken
}

// lastLine is the last non-empty line of git's stderr, for a log line.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// apiMove moves a branch at s through the local write API to a value s
// already holds: another branch's value, its own value's parent, or zero.
func (r *run) apiMove(ctx context.Context, label string, s *cluster.Site, op Op) {
	cur, err := r.valueAt(ctx, s, op.Branch)
	if err != nil {
		r.fail("%s: %v", label, err)
		return
	}
	var cands []string
	switch op.Target {
	case "-":
		cands = append(cands, ZeroSHA)
	case "":
	default:
		v, err := r.valueAt(ctx, s, op.Target)
		if err != nil {
			r.fail("%s: %v", label, err)
			return
		}
		cands = append(cands, v)
	}
	if cur != "" {
		// The parent is at s: a repository holds what its refs reach.
		p, err := r.git.value(ctx, repoDir(s), cur+"^")
		if err != nil {
			r.fail("%s: %v", label, err)
			return
		}
		cands = append(cands, p)
	}
	main, err := r.valueAt(ctx, s, "main")
	if err != nil {
		r.fail("%s: %v", label, err)
		return
	}
	cands = append(cands, main)
	if cur == "" {
		cur = ZeroSHA
	}
	next := ""
	for _, c := range cands {
		if c != "" && c != cur && !(c == ZeroSHA && cur == ZeroSHA) {
			next = c
			break
		}
	}
	if next == "" {
		next = ZeroSHA // main is this branch's value and nothing else is: delete it
		if op.Branch == "main" {
			r.logf("%s: api-move of main at %s: nothing to move to", label, s.Name)
			return
		}
	}
	r.apiWrite(ctx, label, s, "refs/heads/"+op.Branch, cur, next)
}

// apiOutcome says what an answer of POST .../refs other than 200 means: a
// conflict (409) or a quorum not reached (503 saying so) is a refusal,
// decided before the refdb commit; anything else leaves the outcome
// unknown (the refdb unavailable, a timeout).
func apiOutcome(code int, body []byte) Outcome {
	switch {
	case code == http.StatusOK:
		return Acked
	case code == http.StatusConflict, code == http.StatusServiceUnavailable && strings.Contains(string(body), "quorum not reached"):
		return Refused
	}
	return Unknown
}

// writeAnswer is the body of a 200 from POST .../refs.
type writeAnswer struct {
	Txn  string   `json:"txn"`
	Acks []string `json:"acks"`
}

// apiWrite posts one update to s's local write API and records the outcome.
func (r *run) apiWrite(ctx context.Context, label string, s *cluster.Site, ref, old, new string) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"updates": []map[string]string{{"ref": ref, "old": old, "new": new}}})
	u := s.URL + "/api/v1/projects/" + url.PathEscape(Project) + "/refs"
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		r.fail("%s: %v", label, err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	var code int
	var b []byte
	if err == nil {
		code = resp.StatusCode
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	end := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	w := Write{Op: label, Via: "api", Site: s.Name, Ref: ref, Old: old, New: new, Start: start, End: end}
	outcome := ""
	var ans writeAnswer
	switch {
	case err != nil:
		r.counts.Failed++
		outcome = fmt.Sprintf("failed: %v", err)
	case code == http.StatusOK && json.Unmarshal(b, &ans) == nil:
		r.counts.Acked++
		outcome = fmt.Sprintf("ok, txn %s, acks %v", ans.Txn, ans.Acks)
		w.Txn, w.Acks = ans.Txn, ans.Acks
		r.writes = append(r.writes, w)
	case apiOutcome(code, b) == Refused:
		r.counts.Refused++
		outcome = fmt.Sprintf("refused: %d %s", code, strings.TrimSpace(string(b)))
		r.refusals = append(r.refusals, w)
	default:
		r.counts.Failed++
		outcome = fmt.Sprintf("failed: %d %s", code, strings.TrimSpace(string(b)))
	}
	r.logf("%s: api %s %s..%s at %s: %s (%v)", label, ref, short(old), short(new), s.Name, outcome, end.Sub(start).Round(time.Millisecond))
}
