package notedbfast

import (
	_ "embed"
	"sync"
)

//go:generate go run ./internal/gendict -o notedb.dict

// embeddedDict is a zstd dictionary trained by internal/gendict on
// NoteDb-shaped text the project generates itself (meta commits with
// Gerrit's footers, notes trees, comment JSON, ref names), never on copied
// review data. Changing it changes what old peers can read: its zstd
// dictionary id is fixed, so retrain with a new id and keep the old one
// decodable, or bump Version.
//
//go:embed notedb.dict
var embeddedDict []byte

// Dictionary returns the embedded dictionary (do not modify it).
func Dictionary() []byte { return embeddedDict }

var defaultCodec = sync.OnceValues(func() (*Codec, error) { return NewCodec(embeddedDict, nil) })

// Encode encodes ds as one frame with the embedded dictionary.
func Encode(ds ...Delta) ([]byte, error) {
	c, err := defaultCodec()
	if err != nil {
		return nil, err
	}
	return c.Encode(ds...)
}

// Decode decodes a frame written by Encode or any Codec of this version.
func Decode(b []byte, lim Limits) ([]Delta, error) {
	c, err := defaultCodec()
	if err != nil {
		return nil, err
	}
	return c.Decode(b, lim)
}
