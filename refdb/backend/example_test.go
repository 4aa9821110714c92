package backend_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/backend"
)

// A coordinator commits a push with one CAS of every ref it moves and builds
// the user's rejection message from the conflict.
func Example() {
	ctx := context.Background()
	s, err := backend.Open(ctx, refdb.Config{Backend: "embedded", Endpoints: []string{"example"}}, nil, nil)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	main1 := "1111111111111111111111111111111111111111"
	main2 := "2222222222222222222222222222222222222222"
	_, err = s.CAS(ctx, "tango/core", refdb.Batch{Txn: "t1", Site: "b", Updates: []refdb.Update{
		{Ref: "refs/heads/main", Old: refmove.ZeroID, New: main1},
	}})
	fmt.Println("site b:", err)

	// Site a still believes main does not exist.
	_, err = s.CAS(ctx, "tango/core", refdb.Batch{Txn: "t2", Site: "a", Updates: []refdb.Update{
		{Ref: "refs/heads/main", Old: refmove.ZeroID, New: main2},
		{Ref: "refs/heads/topic", Old: refmove.ZeroID, New: main2},
	}})
	var ce *refdb.ConflictError
	if errors.As(err, &ce) {
		for _, c := range ce.Refs {
			fmt.Printf("sitesync: rejected: %s changed at site %s (version %d), fetch and retry\n", c.Ref, c.Current.Site, c.Current.Version)
		}
	}
	recs, _ := s.Get(ctx, "tango/core", "refs/heads/topic")
	fmt.Println("topic exists:", recs[0].Exists())
	// Output:
	// site b: <nil>
	// sitesync: rejected: refs/heads/main changed at site b (version 1), fetch and retry
	// topic exists: false
}
