//go:build tools

// Package tools pins the cosign command this module builds (signing in the OCI e2e tests).
package tools

import _ "github.com/sigstore/cosign/v2/cmd/cosign"
