//go:build tools

// nsqd and nsqlookupd for the NSQ EventSource tests, built by scripts/tools.sh from the pinned
// module (github.com/nsqio/nsq) in this folder's go.mod. Nothing here is compiled into sluice.
package tools

import (
	_ "github.com/nsqio/nsq/apps/nsqd"
	_ "github.com/nsqio/nsq/apps/nsqlookupd"
)
