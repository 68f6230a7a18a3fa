//go:build !unix

package transfer

const noFollow = 0
