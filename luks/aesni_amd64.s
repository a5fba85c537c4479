#include "textflag.h"

// func ecbDecBlocks(rk *byte, nr int, buf *byte, n int)
// Decrypts n 16-byte blocks of buf in place with AES-NI, eight blocks at a
// time so the AESDEC latencies overlap. rk holds the nr+1 round keys of
// the equivalent inverse cipher (dk[0] = ek[nr], dk[i] = InvMixColumns(
// ek[nr-i]), dk[nr] = ek[0]).
TEXT ·ecbDecBlocks(SB), NOSPLIT, $0-32
	MOVQ rk+0(FP), AX
	MOVQ nr+8(FP), CX
	MOVQ buf+16(FP), SI
	MOVQ n+24(FP), BX
	SHLQ $4, CX

loop8:
	CMPQ BX, $8
	JB   loop1
	MOVOU 0(AX), X8
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 64(SI), X4
	MOVOU 80(SI), X5
	MOVOU 96(SI), X6
	MOVOU 112(SI), X7
	PXOR X8, X0
	PXOR X8, X1
	PXOR X8, X2
	PXOR X8, X3
	PXOR X8, X4
	PXOR X8, X5
	PXOR X8, X6
	PXOR X8, X7
	MOVQ $16, R8

round8:
	MOVOU (AX)(R8*1), X8
	AESDEC X8, X0
	AESDEC X8, X1
	AESDEC X8, X2
	AESDEC X8, X3
	AESDEC X8, X4
	AESDEC X8, X5
	AESDEC X8, X6
	AESDEC X8, X7
	ADDQ $16, R8
	CMPQ R8, CX
	JB   round8
	MOVOU (AX)(CX*1), X8
	AESDECLAST X8, X0
	AESDECLAST X8, X1
	AESDECLAST X8, X2
	AESDECLAST X8, X3
	AESDECLAST X8, X4
	AESDECLAST X8, X5
	AESDECLAST X8, X6
	AESDECLAST X8, X7
	MOVOU X0, 0(SI)
	MOVOU X1, 16(SI)
	MOVOU X2, 32(SI)
	MOVOU X3, 48(SI)
	MOVOU X4, 64(SI)
	MOVOU X5, 80(SI)
	MOVOU X6, 96(SI)
	MOVOU X7, 112(SI)
	ADDQ $128, SI
	SUBQ $8, BX
	JMP  loop8

loop1:
	TESTQ BX, BX
	JZ    done
	MOVOU 0(AX), X8
	MOVOU 0(SI), X0
	PXOR  X8, X0
	MOVQ  $16, R8

round1:
	MOVOU (AX)(R8*1), X8
	AESDEC X8, X0
	ADDQ $16, R8
	CMPQ R8, CX
	JB   round1
	MOVOU (AX)(CX*1), X8
	AESDECLAST X8, X0
	MOVOU X0, 0(SI)
	ADDQ $16, SI
	DECQ BX
	JMP  loop1

done:
	RET

DATA xtsmask<>+0(SB)/8, $0x87
DATA xtsmask<>+8(SB)/8, $1
GLOBL xtsmask<>(SB), RODATA|NOPTR, $16

// Next XTS tweak: T = T * x in GF(2^128) (little-endian, as IEEE 1619).
#define NEXT_TWEAK \
	PSHUFD $0x13, X9, X11 \
	PADDQ  X9, X9 \
	PSRAL  $31, X11 \
	PAND   X10, X11 \
	PXOR   X11, X9

#define PRE(i, r) \
	MOVOU X9, (i*16)(SP) \
	MOVOU (i*16)(SI), r \
	PXOR  X9, r \
	NEXT_TWEAK

#define POST(i, r) \
	MOVOU (i*16)(SP), X11 \
	PXOR  X11, r \
	MOVOU r, (i*16)(SI)

// func xtsDecBlocks(rk *byte, nr int, buf *byte, n int, tweak *byte)
// XTS-decrypts n blocks of buf in place (n a multiple of 8), the first
// block's tweak being *tweak (already encrypted with the tweak key): for
// each block, P = D(C ^ T) ^ T, then T = T * x. Eight blocks go through
// the AES rounds together; their tweaks wait on the stack.
TEXT ·xtsDecBlocks(SB), NOSPLIT, $128-40
	MOVQ rk+0(FP), AX
	MOVQ nr+8(FP), CX
	MOVQ buf+16(FP), SI
	MOVQ n+24(FP), BX
	MOVQ tweak+32(FP), DX
	SHLQ $4, CX
	MOVOU (DX), X9
	MOVOU xtsmask<>(SB), X10

xloop:
	CMPQ BX, $8
	JB   xdone
	PRE(0, X0)
	PRE(1, X1)
	PRE(2, X2)
	PRE(3, X3)
	PRE(4, X4)
	PRE(5, X5)
	PRE(6, X6)
	PRE(7, X7)
	MOVOU 0(AX), X8
	PXOR X8, X0
	PXOR X8, X1
	PXOR X8, X2
	PXOR X8, X3
	PXOR X8, X4
	PXOR X8, X5
	PXOR X8, X6
	PXOR X8, X7
	MOVQ $16, R8

xround:
	MOVOU (AX)(R8*1), X8
	AESDEC X8, X0
	AESDEC X8, X1
	AESDEC X8, X2
	AESDEC X8, X3
	AESDEC X8, X4
	AESDEC X8, X5
	AESDEC X8, X6
	AESDEC X8, X7
	ADDQ $16, R8
	CMPQ R8, CX
	JB   xround
	MOVOU (AX)(CX*1), X8
	AESDECLAST X8, X0
	AESDECLAST X8, X1
	AESDECLAST X8, X2
	AESDECLAST X8, X3
	AESDECLAST X8, X4
	AESDECLAST X8, X5
	AESDECLAST X8, X6
	AESDECLAST X8, X7
	POST(0, X0)
	POST(1, X1)
	POST(2, X2)
	POST(3, X3)
	POST(4, X4)
	POST(5, X5)
	POST(6, X6)
	POST(7, X7)
	ADDQ $128, SI
	SUBQ $8, BX
	JMP  xloop

xdone:
	RET
