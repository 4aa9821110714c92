package site

import (
	"context"
	"time"

	"github.com/sitesync/sitesync/internal/coord"

	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/transport"
)

// Status is the body of GET /api/v1/status.
type Status struct {
	Site     string       `json:"site"`
	Instance string       `json:"instance,omitempty"`
	Peers    []PeerStatus `json:"peers"`
	RefDB    RefDBStatus  `json:"refdb"`
	Queues   Queues       `json:"queues"`
	Lag      Lag          `json:"lag"`
	// Parked lists the refs this site has failed to move to the refdb's
	// value for a while, with the reason; while any is listed, /readyz
	// answers 503. Catch-up keeps retrying them.
	Parked []coord.Parked `json:"parked"`
	// Unimported lists the repositories here with refs the refdb has no
	// record of (they existed before sitesync): `sitesync import` makes
	// them replicated projects.
	Unimported []string `json:"unimported"`
	// Importing lists the imports, and copies of imported projects, in
	// progress here.
	Importing []coord.ImportProgress `json:"importing,omitempty"`
}

// PeerStatus is one peer as this site sees it.
type PeerStatus struct {
	Name      string  `json:"name"`
	Connected bool    `json:"connected"`
	RTTMillis float64 `json:"rtt_ms"`
	Since     string  `json:"since,omitempty"`
	// BehindTxns counts the transactions decided here (a push, an API
	// write, a NoteDb batch of writes) that the peer has not been told of
	// yet; BehindSeconds is how long ago the oldest of them
	// was prepared (0 when there is none).
	BehindTxns    int     `json:"behind_txns"`
	BehindSeconds float64 `json:"behind_s"`
}

// RefDBStatus is the health of the refdb.
type RefDBStatus struct {
	Backend string `json:"backend"`
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

// Queues counts writes in flight between sites.
type Queues struct {
	Outbound int `json:"outbound"` // decided here, not yet delivered to every peer
	Prepared int `json:"prepared"` // prepared here for another origin, undecided
}

// Lag says how far this site is behind the refdb, and how far its peers
// are behind it.
type Lag struct {
	CaughtUp bool `json:"caught_up"`
	// PeersBehind counts the peers with writes of this site not yet
	// delivered (see PeerStatus).
	PeersBehind int `json:"peers_behind"`
}

func (s *Site) status(ctx context.Context) any {
	st := Status{Site: s.cfg.Site.Name, Peers: []PeerStatus{}, RefDB: RefDBStatus{Backend: string(s.cfg.RefDB.Backend), Healthy: true}}
	q := s.coord.Queues()
	st.Queues = Queues{Outbound: q.Outbound, Prepared: q.Prepared}
	st.Lag.CaughtUp = s.coord.Ready() == nil
	st.Parked = s.coord.Parked()
	if st.Parked == nil {
		st.Parked = []coord.Parked{}
	}
	st.Unimported = s.coord.Unimported()
	st.Importing = s.coord.Imports()
	now := time.Now()
	if s.mesh != nil {
		st.Instance = s.mesh.InstanceID().String()
		for _, p := range s.mesh.Peers() {
			ps := PeerStatus{Name: p.Name, Connected: p.Connected, RTTMillis: float64(p.RTT.Microseconds()) / 1000}
			if !p.Since.IsZero() {
				ps.Since = p.Since.UTC().Format(time.RFC3339)
			}
			if b := q.Behind[p.Name]; b.Txns > 0 {
				ps.BehindTxns = b.Txns
				ps.BehindSeconds = max(0, now.Sub(b.Oldest).Seconds())
				st.Lag.PeersBehind++
			}
			st.Peers = append(st.Peers, ps)
		}
	}
	pctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := refdb.Ping(pctx, s.store); err != nil {
		st.RefDB.Healthy, st.RefDB.Error = false, err.Error()
	}
	return st
}

// lonely is the mesh of a site without peers: nothing to send to, nothing
// arrives.
type lonely struct{}

func (lonely) OpenStream(context.Context, string, transport.Kind, []byte) (*transport.Stream, error) {
	return nil, transport.ErrUnknownPeer
}
func (lonely) Request(context.Context, string, transport.Kind, []byte) ([]byte, error) {
	return nil, transport.ErrUnknownPeer
}
func (lonely) Handle(transport.Kind, transport.Handler)             {}
func (lonely) HandleStream(transport.Kind, transport.StreamHandler) {}
func (lonely) Subscribe() (<-chan transport.PeerEvent, func())      { return nil, func() {} }
func (lonely) Peers() []transport.PeerState                         { return nil }
