//go:build tools

// Package tools pins the oras command this module builds (plain OCI artifacts in the e2e tests).
package tools

import _ "oras.land/oras/cmd/oras"
