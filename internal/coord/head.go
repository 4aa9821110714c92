package coord

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/hook"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

// A project's HEAD is the ref git.HeadRef, a blob naming the branch: set
// by SetHead as a write like any other (decided in the refdb under the
// project's ack rule, replicated, caught up by a site that was down), and
// followed at every site by moveRefs (followHead). A repository sitesync
// creates starts with HEAD at Config.DefaultHead.

// applying is the environment of git processes that apply what was decided:
// the hooks let them through.
var applying = []string{hook.EnvApplying + "=1"}

// createRepo creates the project's repository here, HEAD at the default
// branch, unless it exists.
func (c *Coordinator) createRepo(ctx context.Context, project string) (bool, error) {
	return c.cfg.Repos.Root().CreateWithHead(ctx, project, c.cfg.DefaultHead)
}

// checkHead checks a branch HEAD may point at.
func checkHead(ref string) error {
	if !strings.HasPrefix(ref, "refs/heads/") {
		return fmt.Errorf("%w: HEAD must name a branch (refs/heads/...), not %q", ErrInvalid, ref)
	}
	if err := refdb.ValidateRef(ref); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return nil
}

// SetHead points the project's HEAD at the branch ref at every placement
// site. The branch need not exist yet. It is a write of git.HeadRef under
// the project's ack rule: the result says which sites hold it.
func (c *Coordinator) SetHead(ctx context.Context, project, ref string) (Result, error) {
	if err := checkHead(ref); err != nil {
		return Result{}, err
	}
	repo, err := c.cfg.Repos.Open(project)
	if err != nil {
		return Result{}, err
	}
	blob, err := git.WriteBlob(ctx, repo.Dir, git.HeadBlob(ref))
	if err != nil {
		return Result{}, err
	}
	cur, err := c.localRefs(ctx, repo, []string{git.HeadRef})
	if err != nil {
		return Result{}, err
	}
	if cur[0] == blob {
		// Already recorded; make sure HEAD follows it here.
		return Result{Acks: []string{c.cfg.Site}}, git.SetHead(ctx, repo.Dir, ref, applying)
	}
	return c.write(ctx, project, []Update{{Ref: git.HeadRef, Old: cur[0], New: blob}})
}

// Head is the branch the project's HEAD points at here.
func (c *Coordinator) Head(project string) (string, error) {
	dir, err := c.cfg.Repos.Root().Existing(project)
	if err != nil {
		return "", err
	}
	return git.ReadHead(dir)
}

// followHead points HEAD where git.HeadRef says after moves moved it. A
// record that is not a HEAD blob (it cannot be: only SetHead writes it)
// is logged and left.
func (c *Coordinator) followHead(ctx context.Context, repo *git.Repo, moves []Move) {
	for _, m := range moves {
		if m.Ref != git.HeadRef || m.New == refmove.ZeroID {
			continue
		}
		err := func() error {
			obj, err := repo.Objects.Object(ctx, m.New)
			if err != nil {
				return err
			}
			if obj.Type != "blob" {
				return errors.New("not a blob")
			}
			target, err := git.ParseHeadBlob(obj.Data)
			if err != nil {
				return err
			}
			return git.SetHead(ctx, repo.Dir, target, applying)
		}()
		if err != nil {
			c.log.Error("cannot point HEAD where the project's HEAD record says", "project", repo.Project, "record", m.New, "error", err)
		}
	}
}

// ProjectInfo describes a project held at this site.
type ProjectInfo struct {
	Name      string   `json:"name"`
	Placement []string `json:"placement"` // the sites that hold it
	Head      string   `json:"head"`      // the branch HEAD points at here
}

// Projects describes every project held at this site, by name.
func (c *Coordinator) Projects() ([]ProjectInfo, error) {
	names, err := c.localProjects()
	if err != nil {
		return nil, err
	}
	out := make([]ProjectInfo, 0, len(names))
	for _, n := range names {
		info, err := c.Project(n)
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, info)
	}
	return out, nil
}

// Project describes one project held at this site; git.ErrNotFound if
// it is not.
func (c *Coordinator) Project(name string) (ProjectInfo, error) {
	head, err := c.Head(name)
	if err != nil {
		return ProjectInfo{}, err
	}
	sites := c.policy(name).Sites
	slices.Sort(sites)
	return ProjectInfo{Name: name, Placement: sites, Head: head}, nil
}
