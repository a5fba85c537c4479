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

// func ecbEncBlocks(rk *byte, nr int, buf *byte, n int)
// Encrypts n 16-byte blocks of buf in place with AES-NI (rk: the nr+1
// round keys of the forward cipher), four at a time: it encrypts the XTS
// tweaks of a batch of sectors, where crypto/aes would cost a call each.
TEXT ·ecbEncBlocks(SB), NOSPLIT, $0-32
	MOVQ rk+0(FP), AX
	MOVQ nr+8(FP), CX
	MOVQ buf+16(FP), SI
	MOVQ n+24(FP), BX
	SHLQ $4, CX

eloop4:
	CMPQ BX, $4
	JB   eloop1
	MOVOU 0(AX), X8
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	PXOR X8, X0
	PXOR X8, X1
	PXOR X8, X2
	PXOR X8, X3
	MOVQ $16, R8

eround4:
	MOVOU (AX)(R8*1), X8
	AESENC X8, X0
	AESENC X8, X1
	AESENC X8, X2
	AESENC X8, X3
	ADDQ $16, R8
	CMPQ R8, CX
	JB   eround4
	MOVOU (AX)(CX*1), X8
	AESENCLAST X8, X0
	AESENCLAST X8, X1
	AESENCLAST X8, X2
	AESENCLAST X8, X3
	MOVOU X0, 0(SI)
	MOVOU X1, 16(SI)
	MOVOU X2, 32(SI)
	MOVOU X3, 48(SI)
	ADDQ $64, SI
	SUBQ $4, BX
	JMP  eloop4

eloop1:
	TESTQ BX, BX
	JZ    edone
	MOVOU 0(AX), X8
	MOVOU 0(SI), X0
	PXOR  X8, X0
	MOVQ  $16, R8

eround1:
	MOVOU (AX)(R8*1), X8
	AESENC X8, X0
	ADDQ $16, R8
	CMPQ R8, CX
	JB   eround1
	MOVOU (AX)(CX*1), X8
	AESENCLAST X8, X0
	MOVOU X0, 0(SI)
	ADDQ $16, SI
	DECQ BX
	JMP  eloop1

edone:
	RET

// func cpuid7() (ebx, ecx uint32)
TEXT ·cpuid7(SB), NOSPLIT, $0-8
	MOVL $7, AX
	MOVL $0, CX
	CPUID
	MOVL BX, ebx+0(FP)
	MOVL CX, ecx+4(FP)
	RET

// MULX(k, src, dst, t1, t2): each 128-bit lane of dst = that lane of src
// times x^k in GF(2^128) (XTS's little-endian convention), 0 < k < 64:
// both qwords shift left by k; the k bits out of the low qword move into
// the high one, and those out of the high one are reduced by
// x^128 = x^7 + x^2 + x + 1 (0x87, the low qword of Y15), with a
// carry-less multiply. As the kernel's aes-xts-avx-x86_64.S does it, so
// the tweaks of a vector need no serial doubling chain.
#define MULX(k, src, dst, t1, t2) \
	VPSRLQ     $(64-k), src, t1 \
	VPCLMULQDQ $0x01, Y15, t1, t2 \
	VPSLLDQ    $8, t1, t1 \
	VPSLLQ     $k, src, dst \
	VPXOR      t1, dst, dst \
	VPXOR      t2, dst, dst

// NEXT16(i): the tweak vector i of the next 16 blocks, x^16 times this one.
#define NEXT16(i) \
	VMOVDQU (i*32)(R10), Y9 \
	MULX(16, Y9, Y10, Y11, Y12) \
	VMOVDQU Y10, (i*32)(R11)

#define XIN(i, r) \
	VMOVDQU (i*32)(R10), r \
	VPXOR   (i*32)(SI), r, r \
	VPXOR   Y8, r, r

#define XOUT(i, r) \
	VPXOR   (i*32)(R10), r, r \
	VMOVDQU r, (i*32)(SI)

#define ROUND(op) \
	op Y8, Y0, Y0 \
	op Y8, Y1, Y1 \
	op Y8, Y2, Y2 \
	op Y8, Y3, Y3 \
	op Y8, Y4, Y4 \
	op Y8, Y5, Y5 \
	op Y8, Y6, Y6 \
	op Y8, Y7, Y7

// func xtsDecSectorsVAES(rk *byte, nr int, buf *byte, nsec int, blocks int, tweaks *byte)
// XTS-decrypts nsec consecutive sectors of blocks 16-byte blocks each
// (blocks a multiple of 16) in place with VAES on 256-bit registers: two
// blocks per instruction, sixteen blocks (eight registers) in flight so
// the AES units stay busy. tweaks holds each sector's first tweak, already
// encrypted with the tweak key. rk is the decryption schedule as for
// ecbDecBlocks; each round key is broadcast to both lanes as it is used.
// The tweaks of the 16 blocks in flight live on the stack (0..255 this
// group's, 256..511 the next group's, R10 and R11 pointing at them).
TEXT ·xtsDecSectorsVAES(SB), 0, $512-48
	MOVQ rk+0(FP), AX
	MOVQ nr+8(FP), CX
	MOVQ buf+16(FP), SI
	MOVQ nsec+24(FP), DX
	MOVQ blocks+32(FP), R9
	MOVQ tweaks+40(FP), DI
	SHLQ $4, CX
	VBROADCASTI128 xtsmask<>(SB), Y15

vsector:
	TESTQ DX, DX
	JZ    vdone
	LEAQ  0(SP), R10
	LEAQ  256(SP), R11

	// Tweaks 0..15 of the sector: [T, T*x] by one doubling, then each
	// further pair by its own multiplication by x^2k.
	VMOVDQU (DI), X8
	VPSHUFD $0x13, X8, X9
	VPADDQ  X8, X8, X10
	VPSRAD  $31, X9, X9
	VPAND   X15, X9, X9
	VPXOR   X9, X10, X10
	VINSERTI128 $1, X10, Y8, Y8
	VMOVDQU Y8, 0(R10)
	MULX(2, Y8, Y0, Y9, Y10)
	MULX(4, Y8, Y1, Y11, Y12)
	MULX(6, Y8, Y2, Y13, Y14)
	MULX(8, Y8, Y3, Y9, Y10)
	MULX(10, Y8, Y4, Y11, Y12)
	MULX(12, Y8, Y5, Y13, Y14)
	MULX(14, Y8, Y6, Y9, Y10)
	VMOVDQU Y0, 32(R10)
	VMOVDQU Y1, 64(R10)
	VMOVDQU Y2, 96(R10)
	VMOVDQU Y3, 128(R10)
	VMOVDQU Y4, 160(R10)
	VMOVDQU Y5, 192(R10)
	VMOVDQU Y6, 224(R10)
	MOVQ R9, BX

vgroup:
	VBROADCASTI128 0(AX), Y8
	XIN(0, Y0)
	XIN(1, Y1)
	XIN(2, Y2)
	XIN(3, Y3)
	XIN(4, Y4)
	XIN(5, Y5)
	XIN(6, Y6)
	XIN(7, Y7)
	NEXT16(0)
	NEXT16(1)
	NEXT16(2)
	NEXT16(3)
	NEXT16(4)
	NEXT16(5)
	NEXT16(6)
	NEXT16(7)
	MOVQ $16, R8

vround:
	VBROADCASTI128 (AX)(R8*1), Y8
	ROUND(VAESDEC)
	ADDQ $16, R8
	CMPQ R8, CX
	JB   vround
	VBROADCASTI128 (AX)(CX*1), Y8
	ROUND(VAESDECLAST)
	XOUT(0, Y0)
	XOUT(1, Y1)
	XOUT(2, Y2)
	XOUT(3, Y3)
	XOUT(4, Y4)
	XOUT(5, Y5)
	XOUT(6, Y6)
	XOUT(7, Y7)
	ADDQ  $256, SI
	XCHGQ R10, R11
	SUBQ  $16, BX
	JNZ   vgroup

	ADDQ $16, DI
	DECQ DX
	JMP  vsector

vdone:
	VZEROUPPER
	RET
