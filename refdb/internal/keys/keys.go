// Package keys is the key layout shared by the refdb backends that store
// records in an ordered key space (TiKV, etcd):
//
//	<prefix> "/r/" escape(project) 0x00 0x01 <ref>
//
// escape replaces every 0x00 byte of the project name with 0x00 0xFF, so the
// terminator 0x00 0x01 can never occur inside an escaped name. Hence a
// project's keys are one contiguous range [Start, End), and no project's range
// overlaps another's: "a" ends at its terminator where "a/b" continues with
// '/'. Pure functions, safe for concurrent use.
package keys

import "bytes"

const (
	esc  = 0x00
	escd = 0xFF // 0x00 in a project name is written 0x00 0xFF
	term = 0x01 // the project name ends with 0x00 0x01
)

// Layout is a key prefix, e.g. "/sitesync".
type Layout struct{ Prefix string }

func (l Layout) project(project string, last byte) []byte {
	b := make([]byte, 0, len(l.Prefix)+3+len(project)+2)
	b = append(b, l.Prefix...)
	b = append(b, "/r/"...)
	for i := 0; i < len(project); i++ {
		if project[i] == esc {
			b = append(b, esc, escd)
			continue
		}
		b = append(b, project[i])
	}
	return append(b, esc, last)
}

// Start is the first key of the project's range (inclusive).
func (l Layout) Start(project string) []byte { return l.project(project, term) }

// End is the end of the project's range (exclusive).
func (l Layout) End(project string) []byte { return l.project(project, term+1) }

// Ref is the key of one ref.
func (l Layout) Ref(project, ref string) []byte {
	return append(l.Start(project), ref...)
}

// RefOf returns the ref of a key inside the project's range.
func (l Layout) RefOf(project string, key []byte) (string, bool) {
	start := l.Start(project)
	if !bytes.HasPrefix(key, start) {
		return "", false
	}
	return string(key[len(start):]), true
}
