//go:build tools

// Package tools pins dependencies that the project's packages are about to use,
// so that go.mod and go.sum stay complete while those packages are written in
// parallel. Remove an import here once a real package imports it.
package tools

import (
	_ "github.com/anishathalye/porcupine"
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/go-git/go-git/v5"
	_ "github.com/go-git/go-git/v5/plumbing/format/pktline"
	_ "github.com/google/uuid"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/pingcap/log"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/quic-go/quic-go"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "github.com/stretchr/testify/require"
	_ "github.com/tikv/client-go/v2/testutils"
	_ "github.com/tikv/client-go/v2/tikv"
	_ "github.com/tikv/client-go/v2/txnkv"
	_ "go.etcd.io/etcd/client/v3"
	_ "golang.org/x/sync/errgroup"
	_ "gonum.org/v1/plot"
	_ "gonum.org/v1/plot/plotter"
	_ "gonum.org/v1/plot/vg"
)
