package refdb

import (
	"encoding/json"
	"fmt"
	"time"
)

// wireRecord is the stored form of a Record: JSON, so an operator can read it
// with etcdctl or tikv-ctl. The ref name is the key, not repeated here.
type wireRecord struct {
	Value   string `json:"v"`
	Version uint64 `json:"n"`
	Site    string `json:"s"`
	Txn     string `json:"t"`
	Time    int64  `json:"ts"` // Unix nanoseconds, UTC
}

// EncodeRecord is the value backends store for a record.
func EncodeRecord(r Record) []byte {
	b, err := json.Marshal(wireRecord{Value: r.Value, Version: r.Version, Site: r.Site, Txn: r.Txn, Time: r.Time.UnixNano()})
	if err != nil {
		panic(err) // cannot happen: only strings and integers
	}
	return b
}

// DecodeRecord is the inverse of EncodeRecord.
func DecodeRecord(ref string, b []byte) (Record, error) {
	var w wireRecord
	if err := json.Unmarshal(b, &w); err != nil {
		return Record{}, fmt.Errorf("decode record of %q: %w", ref, err)
	}
	if err := ValidateSHA(w.Value); err != nil {
		return Record{}, fmt.Errorf("decode record of %q: %w", ref, err)
	}
	return Record{Ref: ref, Value: w.Value, Version: w.Version, Site: w.Site, Txn: w.Txn, Time: time.Unix(0, w.Time).UTC()}, nil
}
