package embedded

import (
	"fmt"
	"sync"

	pingcaplog "github.com/pingcap/log"
	"github.com/tikv/client-go/v2/testutils"
	tikvclient "github.com/tikv/client-go/v2/tikv"
	"go.uber.org/zap/zapcore"

	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/tikv"
)

var _ refdb.Store = (*tikv.Store)(nil)

// localLatches is the number of client-side latch slots: transactions of this
// process that write the same key queue on a latch before prewrite instead of
// racing in the store, so a lost race fails fast without leaving locks that
// readers must wait out. Every client of an embedded store is in this process,
// so the latches see all contention.
const localLatches = 4096

// instance is one in-process TiKV shared by the Stores opened with its name.
type instance struct {
	kv   *tikvclient.KVStore
	refs int
}

var (
	mu        sync.Mutex // guards instances and instance.refs
	instances = map[string]*instance{}
)

// Open returns a Store on the in-process TiKV named name, creating it on
// first use. Each Store must be closed; the instance goes away with the
// last one.
func Open(name string, opts tikv.Options) (*tikv.Store, error) {
	mu.Lock()
	defer mu.Unlock()
	inst, ok := instances[name]
	if !ok {
		kv, err := NewKV()
		if err != nil {
			return nil, err
		}
		inst = &instance{kv: kv}
		instances[name] = inst
	}
	inst.refs++
	var once sync.Once
	opts.OnClose = func() error {
		var err error
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			inst.refs--
			if inst.refs == 0 {
				delete(instances, name)
				err = inst.kv.Close()
			}
		})
		return err
	}
	return tikv.New(inst.kv, opts), nil
}

// NewKV starts a fresh in-process TiKV (one region, one store) and returns
// the client-go store on it; the caller closes it. It also lowers client-go's
// process-wide logger to errors: its info logs are noise in a demo or test.
func NewKV() (*tikvclient.KVStore, error) {
	pingcaplog.SetLevel(zapcore.ErrorLevel)
	client, cluster, pdClient, err := testutils.NewMockTiKV("", nil)
	if err != nil {
		return nil, fmt.Errorf("start in-process tikv: %w", err)
	}
	testutils.BootstrapWithSingleStore(cluster)
	kv, err := tikvclient.NewTestTiKVStore(client, pdClient, nil, nil, localLatches)
	if err != nil {
		return nil, fmt.Errorf("start in-process tikv: %w", err)
	}
	return kv, nil
}
