package packsync

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
)

// maxCommands bounds the command section of one push request that is held in
// memory before the pack: a push of every ref of a very large repository
// (a few hundred thousand refs at ~100 bytes) fits.
const maxCommands = 64 << 20

// ErrNotTeeable means a push request is valid git but not one whose pack can
// be teed (a signed push, say): the push goes ahead and the pack is shipped
// to the peers another way.
var ErrNotTeeable = errors.New("push request cannot be teed")

// Command is one ref update of a push (refmove.Update).
type Command = refmove.Update

// Push is the parsed head of a receive-pack request body: the ref updates
// the client asks for, and whether a pack follows.
type Push struct {
	Commands []Command
	// Head holds the bytes read to parse the commands; git must see them
	// before the rest of the body.
	Head []byte
	// HasPack says a pack follows Head: some command creates or moves a ref.
	HasPack bool
	// Caps are the capabilities the client asked for on its first command.
	Caps []string
}

// ParsePush reads the command section of a receive-pack request (protocol v0
// and v1: optional shallow lines, "old new ref" commands, the capabilities
// after a NUL on the first one, a flush, then push options and a flush if the
// client asked for them) and leaves r at the start of the pack. The bytes
// read are in Push.Head. A request it cannot tee yields ErrNotTeeable with
// Head filled so the request can still be passed on whole.
func ParsePush(r *bufio.Reader) (Push, error) {
	var p Push
	var buf bytes.Buffer
	readPkt := func() (payload []byte, flush bool, err error) {
		var hdr [4]byte
		n, err := io.ReadFull(r, hdr[:])
		buf.Write(hdr[:n])
		if err != nil {
			return nil, false, fmt.Errorf("read push command: %w", unexpected(err))
		}
		size, err := strconv.ParseUint(string(hdr[:]), 16, 16)
		if err != nil {
			return nil, false, fmt.Errorf("malformed pkt-line length %q", hdr[:])
		}
		switch {
		case size == 0:
			return nil, true, nil
		case size < 4:
			return nil, false, fmt.Errorf("unexpected pkt-line %04x in push commands", size)
		}
		if buf.Len()+int(size) > maxCommands {
			return nil, false, fmt.Errorf("push commands exceed %d bytes", maxCommands)
		}
		line := make([]byte, size-4)
		n, err = io.ReadFull(r, line)
		buf.Write(line[:n])
		if err != nil {
			return nil, false, fmt.Errorf("read push command: %w", unexpected(err))
		}
		return line, false, nil
	}
	var caps string
	first := true
	for {
		line, flush, err := readPkt()
		if err != nil {
			p.Head = buf.Bytes()
			return p, err
		}
		if flush {
			break
		}
		text := strings.TrimSuffix(string(line), "\n")
		if first {
			first = false
			var c string
			text, c, _ = strings.Cut(text, "\x00")
			caps = c
			if strings.HasPrefix(text, "push-cert") {
				p.Head = buf.Bytes()
				return p, fmt.Errorf("%w: signed push", ErrNotTeeable)
			}
		}
		if strings.HasPrefix(text, "shallow ") {
			p.Head = buf.Bytes()
			return p, fmt.Errorf("%w: push from a shallow repository", ErrNotTeeable)
		}
		f := strings.SplitN(text, " ", 3)
		if len(f) != 3 || !git.IsID(f[0]) || !git.IsID(f[1]) || f[2] == "" {
			p.Head = buf.Bytes()
			return p, fmt.Errorf("malformed push command %q", truncate(text))
		}
		p.Commands = append(p.Commands, Command{Old: f[0], New: f[1], Ref: f[2]})
		if f[1] != refmove.ZeroID {
			p.HasPack = true
		}
	}
	p.Caps = strings.Fields(caps)
	if len(p.Commands) == 0 {
		p.Head = buf.Bytes()
		return p, nil // a flush alone: the client had nothing to push
	}
	if hasCap(caps, "push-options") {
		for {
			_, flush, err := readPkt()
			if err != nil {
				p.Head = buf.Bytes()
				return p, err
			}
			if flush {
				break
			}
		}
	}
	p.Head = buf.Bytes()
	return p, nil
}

func hasCap(caps, name string) bool {
	for _, c := range strings.Fields(caps) {
		if c == name || strings.HasPrefix(c, name+"=") {
			return true
		}
	}
	return false
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// Rejection is the response receive-pack would have sent had it refused
// every command of the push for reason: the reason as a progress message
// (the client shows it as "remote: …") and, if the client asked for a
// report, "ng" for each ref. It stands in for receive-pack when git dies
// without answering, as git 2.39 does when the reference-transaction hook
// refuses a write ("ref updates aborted by hook").
func (p Push) Rejection(reason string) []byte {
	var report bytes.Buffer
	short := strings.ReplaceAll(reason, "\n", " ")
	if hasCap(strings.Join(p.Caps, " "), "report-status") || hasCap(strings.Join(p.Caps, " "), "report-status-v2") {
		report.WriteString(pktLine("unpack ok\n"))
		for _, c := range p.Commands {
			report.WriteString(pktLine("ng " + c.Ref + " " + short + "\n"))
		}
		report.WriteString("0000")
	}
	var band byte
	switch {
	case hasCap(strings.Join(p.Caps, " "), "side-band-64k"):
		band = 1
	case hasCap(strings.Join(p.Caps, " "), "side-band"):
		band = 1
	}
	if band == 0 {
		return report.Bytes()
	}
	max := 65515
	if !hasCap(strings.Join(p.Caps, " "), "side-band-64k") {
		max = 995
	}
	var out bytes.Buffer
	for _, line := range strings.Split(strings.TrimRight(reason, "\n"), "\n") {
		out.WriteString(sideband(2, []byte(line+"\n"), max))
	}
	out.WriteString(sideband(1, report.Bytes(), max))
	out.WriteString("0000")
	return out.Bytes()
}

// sideband frames data as pkt-lines on a side-band channel.
func sideband(ch byte, data []byte, max int) string {
	var b strings.Builder
	for len(data) > 0 {
		n := min(len(data), max)
		b.WriteString(fmt.Sprintf("%04x", n+5))
		b.WriteByte(ch)
		b.Write(data[:n])
		data = data[n:]
	}
	return b.String()
}

func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
