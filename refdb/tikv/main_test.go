package tikv_test

import (
	"os"
	"testing"

	pingcaplog "github.com/pingcap/log"
	"go.uber.org/zap/zapcore"
)

// TestMain silences client-go's process-wide logger: the mock store does not
// implement async commit, and the client logs each fallback to 2PC as a warning.
func TestMain(m *testing.M) {
	pingcaplog.SetLevel(zapcore.ErrorLevel)
	os.Exit(m.Run())
}
