//go:build tools

// Package witness only records the commands this module pins, so that
// go mod tidy keeps their requirements.
package witness

import (
	_ "filippo.io/torchwood/cmd/litewitness"
	_ "filippo.io/torchwood/cmd/witnessctl"
)
