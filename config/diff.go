package config

import (
	"fmt"
	"reflect"
	"strings"
)

// liveKeys are the top-level sections that may change without a restart.
// replication and shard are read per transaction from the snapshot the
// transaction started with (DESIGN.md §7). notedb only decides whether a batch
// takes the fast path or ships a pack; both paths are correct for any batch,
// and the receiver checks every hash and its own size limit, so it is safe to
// change too. Everything else is bound to listeners, connections, certificates,
// files or the refdb client when the daemon starts.
var liveKeys = []string{"replication", "shard", "notedb"}

// Diff returns the key paths whose values differ between a and b, in schema
// order, as precisely as the change allows: "mesh.peers[1].addr" for a changed
// peer address, "mesh.peers" when peers were added or removed.
func Diff(a, b *Config) []string {
	var out []string
	diffValue("", reflect.ValueOf(*a), reflect.ValueOf(*b), &out)
	return out
}

func diffValue(path string, a, b reflect.Value, out *[]string) {
	switch a.Kind() {
	case reflect.Struct:
		t := a.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := f.Tag.Get("mapstructure")
			if tag == "" || !f.IsExported() {
				continue
			}
			p := tag
			if path != "" {
				p = path + "." + tag
			}
			diffValue(p, a.Field(i), b.Field(i), out)
		}
	case reflect.Slice:
		if a.Len() != b.Len() {
			*out = append(*out, path)
			return
		}
		for i := 0; i < a.Len(); i++ {
			diffValue(fmt.Sprintf("%s[%d]", path, i), a.Index(i), b.Index(i), out)
		}
	case reflect.Ptr:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				*out = append(*out, path)
			}
			return
		}
		diffValue(path, a.Elem(), b.Elem(), out)
	default:
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, path)
		}
	}
}

func isLive(key string) bool {
	for _, k := range liveKeys {
		if key == k || strings.HasPrefix(key, k+".") || strings.HasPrefix(key, k+"[") {
			return true
		}
	}
	return false
}
