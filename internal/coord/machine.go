package coord

import "slices"

// originTxn is the life of one write at its origin, as a pure state
// machine in the manner of etcd's raft: the shell feeds it events (its
// start, each peer's vote, the vote timeout, the refdb's answer) and carries
// out the step it returns (ask peers to prepare, take the decision in the
// refdb, tell peers to drop the write, queue the decision for the peers,
// answer the writer). It starts no goroutine, reads no clock and does no
// I/O. Pushes and API writes run it through decide; a NoteDb batch runs one
// per write through the same steps.
type originTxn struct {
	site   string
	policy Policy
	peers  []string // the placement without the origin
	tally  *Tally
	phase  originPhase
}

type originPhase int

const (
	phaseStart    originPhase = iota
	phaseVoting               // asked the peers; waiting for the rule
	phaseDeciding             // the rule holds; the refdb is deciding
	phaseDone                 // answered
)

// originStep is what the shell does next. Zero fields mean nothing to do.
type originStep struct {
	Prepare []string // ask these peers to prepare the write and vote
	Decide  bool     // compare-and-set the write's refs in the refdb now
	Abort   []string // tell these peers to drop what the write left
	Queue   []string // the decision stands: deliver it to these peers
	Acks    []string // sites that hold the write (voted yes, origin first)
	Done    bool     // the write is answered: Err, or acknowledged to Acks
	Err     error
}

func newOriginTxn(site string, p Policy, peers []string) *originTxn {
	return &originTxn{site: site, policy: p, peers: peers, tally: NewTally(p.Sites, p.Acks)}
}

// Start begins the write: the origin holds it; async writes (and rules the
// origin alone meets) go to the refdb at once, others ask the peers.
func (t *originTxn) Start() originStep {
	if t.phase != phaseStart {
		return originStep{}
	}
	t.tally.Yes(t.site)
	if t.policy.Mode == Async || t.tally.Outcome() != Pending {
		t.phase = phaseDeciding
		return originStep{Decide: true}
	}
	t.phase = phaseVoting
	return originStep{Prepare: slices.Clone(t.peers)}
}

// Vote records a peer's answer; a late one (after the rule held, or after
// the answer) changes nothing.
func (t *originTxn) Vote(site string, v voteMsg) originStep {
	if t.phase != phaseVoting {
		return originStep{}
	}
	if v.Vote == voteYes {
		t.tally.Yes(site)
	} else {
		t.tally.No(site, v.Reason)
	}
	switch t.tally.Outcome() {
	case Reached:
		t.phase = phaseDeciding
		return originStep{Decide: true}
	case Failed:
		return t.refuse()
	}
	return originStep{}
}

// Timeout: the write's time to meet its rule is over (or its writer left).
func (t *originTxn) Timeout() originStep {
	if t.phase != phaseVoting {
		return originStep{}
	}
	for _, p := range t.peers {
		if !slices.Contains(t.tally.Acks(), p) {
			t.tally.No(p, "no answer")
		}
	}
	return t.refuse()
}

func (t *originTxn) refuse() originStep {
	t.phase = phaseDone
	return originStep{Abort: slices.Clone(t.peers), Done: true,
		Err: &QuorumError{Summary: t.tally.Summary(), Timeout: t.policy.Timeout}}
}

// Decided is the refdb's answer: err nil, the write stands and every peer
// is to hear of it (those that voted yes hold its objects); else it failed
// (a conflict, an invalid write, a refdb that could not decide) and the
// peers drop it.
func (t *originTxn) Decided(err error) originStep {
	if t.phase != phaseDeciding {
		return originStep{}
	}
	t.phase = phaseDone
	if err != nil {
		return originStep{Abort: slices.Clone(t.peers), Done: true, Err: err}
	}
	return originStep{Queue: slices.Clone(t.peers), Acks: t.tally.Acks(), Done: true}
}
