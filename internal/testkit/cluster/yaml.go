package cluster

import (
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// topOrder is the order of the top-level sections in a written config, the
// order of docs/configuration.md; other keys follow, sorted.
var topOrder = []string{"site", "http", "mesh", "refdb", "replication", "shard", "notedb", "projects"}

// plainKey is a key written without quotes.
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)

// marshalYAML writes a config tree (maps with string keys, slices, scalars)
// as block-style YAML. Strings are double-quoted (JSON escapes are YAML
// escapes), time.Duration and other fmt.Stringers are written as their
// String. The tree is small and built by this package or a test, so the
// writer favours a readable, deterministic file over generality.
func marshalYAML(tree map[string]any) ([]byte, error) {
	var b strings.Builder
	if err := emitMap(&b, 0, reflect.ValueOf(tree), true); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

func emitMap(b *strings.Builder, indent int, m reflect.Value, top bool) error {
	keys := make([]string, 0, m.Len())
	byName := map[string]reflect.Value{}
	for _, k := range m.MapKeys() {
		name := fmt.Sprint(k.Interface())
		keys = append(keys, name)
		byName[name] = m.MapIndex(k)
	}
	rank := func(k string) int {
		if top {
			if i := slices.Index(topOrder, k); i >= 0 {
				return i
			}
			return len(topOrder)
		}
		if k == "name" || k == "match" { // a list item's identity first
			return 0
		}
		return 1
	}
	slices.SortFunc(keys, func(x, y string) int {
		if d := rank(x) - rank(y); d != 0 {
			return d
		}
		return strings.Compare(x, y)
	})
	pad := strings.Repeat(" ", indent)
	for _, k := range keys {
		key := k
		if !plainKey.MatchString(k) {
			key = strconv.Quote(k)
		}
		v := deref(byName[k])
		b.WriteString(pad + key + ":")
		if err := emitValue(b, indent, v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// emitValue writes v after "key:" (or after "-"): a scalar or empty
// collection on the same line, else a nested block.
func emitValue(b *strings.Builder, indent int, v reflect.Value) error {
	switch {
	case isMap(v) && v.Len() > 0:
		b.WriteString("\n")
		return emitMap(b, indent+2, v, false)
	case isSeq(v) && v.Len() > 0:
		b.WriteString("\n")
		return emitSeq(b, indent+2, v)
	}
	s, err := scalar(v)
	if err != nil {
		return err
	}
	b.WriteString(" " + s + "\n")
	return nil
}

func emitSeq(b *strings.Builder, indent int, s reflect.Value) error {
	pad := strings.Repeat(" ", indent)
	for i := range s.Len() {
		v := deref(s.Index(i))
		if isMap(v) && v.Len() > 0 {
			// "- " then the map's first key on the same line.
			var item strings.Builder
			if err := emitMap(&item, indent+2, v, false); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
			b.WriteString(pad + "- " + item.String()[indent+2:])
			continue
		}
		b.WriteString(pad + "-")
		if err := emitValue(b, indent, v); err != nil {
			return fmt.Errorf("[%d]: %w", i, err)
		}
	}
	return nil
}

func deref(v reflect.Value) reflect.Value {
	for v.IsValid() && v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	return v
}

func isMap(v reflect.Value) bool { return v.IsValid() && v.Kind() == reflect.Map }

func isSeq(v reflect.Value) bool {
	return v.IsValid() && (v.Kind() == reflect.Slice || v.Kind() == reflect.Array)
}

var durationType = reflect.TypeOf(time.Duration(0))

func scalar(v reflect.Value) (string, error) {
	if !v.IsValid() || (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) && v.IsNil() {
		return "null", nil
	}
	if v.Type() == durationType {
		return strconv.Quote(time.Duration(v.Int()).String()), nil
	}
	if st, ok := v.Interface().(fmt.Stringer); ok {
		return strconv.Quote(st.String()), nil
	}
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String()), nil
	case reflect.Bool:
		return strconv.FormatBool(v.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64), nil
	case reflect.Map:
		return "{}", nil
	case reflect.Slice, reflect.Array:
		return "[]", nil
	}
	return "", fmt.Errorf("cannot write a %s as YAML", v.Type())
}
