package partition

import "strings"

// MBRTypeName returns sfdisk's name for an MBR partition type byte, or "".
func MBRTypeName(t byte) string { return mbrTypeNames[t] }

// GPTTypeName returns sfdisk's name for a GPT partition type GUID (any case),
// or "".
func GPTTypeName(guid string) string { return gptTypeNames[strings.ToUpper(guid)] }
