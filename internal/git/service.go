package git

import (
	"context"
	"fmt"
	"io"
)

// Service is a git smart-protocol service that a client talks to.
type Service string

// The services of the smart protocol.
const (
	UploadPack  Service = "upload-pack"  // clone and fetch
	ReceivePack Service = "receive-pack" // push
)

// ParseService maps the name a client sends ("git-upload-pack") to a Service.
func ParseService(name string) (Service, error) {
	switch name {
	case "git-upload-pack":
		return UploadPack, nil
	case "git-receive-pack":
		return ReceivePack, nil
	}
	return "", fmt.Errorf("unknown git service %q", name)
}

// ServiceRequest is one stateless-rpc exchange with a service: the ref
// advertisement, or one request body and its response.
type ServiceRequest struct {
	Dir       string    // the repository
	Service   Service   // which service
	Advertise bool      // the ref advertisement (GET info/refs) rather than a request
	Protocol  string    // the client's Git-Protocol header, passed on as GIT_PROTOCOL
	Env       []string  // extra environment, for hooks
	Stdin     io.Reader // the request body; nil with Advertise
	Stdout    io.Writer // where the response goes, streamed as git writes it
}

// RunService runs `git <service> --stateless-rpc` for one request. The
// request and the response stream through without being held in memory.
func RunService(ctx context.Context, req ServiceRequest) error {
	args := []string{string(req.Service), "--stateless-rpc"}
	if req.Advertise {
		args = append(args, "--advertise-refs")
	}
	args = append(args, req.Dir)
	env := req.Env
	if req.Protocol != "" {
		env = append(env[:len(env):len(env)], "GIT_PROTOCOL="+req.Protocol)
	}
	return run(ctx, req.Dir, env, req.Stdin, req.Stdout, args...)
}
