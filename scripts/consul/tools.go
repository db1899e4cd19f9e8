//go:build tools

// Package tools pins the Consul agent used by the integration tests.
package tools

import _ "github.com/hashicorp/consul"
