package xfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The log (xfs_log_format.h). Record headers and op headers are
// big-endian; the log items inside transactions are in the byte order of
// the machine that wrote them (little-endian on x86 and arm64, which is
// all this reader accepts); the metadata they carry (buffers, extents,
// btree roots) is in disk order.
const (
	logMagic       = 0xfeedbabe
	logHdrCycleSz  = 32768 // XLOG_HEADER_CYCLE_SIZE
	logVersion2    = 2
	logMaxRecord   = 256 << 10 // XLOG_BIG_RECORD_BSIZE
	opHdrSize      = 12
	transMagic     = 0x5452414e // "TRAN", native order
	transHdrSize   = 16
	maxRegions     = 257 // XLOG_MAX_REGIONS_IN_ITEM
	clientTrans    = 0x69
	clientLog      = 0xaa
	opStart        = 0x01
	opCommit       = 0x02
	opContinue     = 0x04
	opWasCont      = 0x08
	opEnd          = 0x10
	opUnmount      = 0x20
	liEFI          = 0x1236
	liEFD          = 0x1237
	liIUnlink      = 0x1238
	liInode        = 0x123b
	liBuf          = 0x123c
	liDquot        = 0x123d
	liQuotaoff     = 0x123e
	liICreate      = 0x123f
	liRUI          = 0x1240
	liRUD          = 0x1241
	liCUI          = 0x1242
	liCUD          = 0x1243
	liBUI          = 0x1244
	liBUD          = 0x1245
	liATTRI        = 0x1246
	liATTRD        = 0x1247
	liXMI          = 0x1248
	liXMD          = 0x1249
	blfInodeBuf    = 0x01
	blfUDquot      = 0x02
	blfCancel      = 0x04
	blfPDquot      = 0x08
	blfGDquot      = 0x10
	blfChunk       = 128
	ilogCore       = 0x001
	ilogDData      = 0x002
	ilogDExt       = 0x004
	ilogDBroot     = 0x008
	ilogDev        = 0x010
	ilogAData      = 0x040
	ilogAExt       = 0x080
	ilogABroot     = 0x100
	ilogDFork      = ilogDData | ilogDExt | ilogDBroot
	ilogAFork      = ilogAData | ilogAExt | ilogABroot
	nullAgino      = 0xffffffff
	inodeNextUnlnk = 96
)

var le = binary.LittleEndian

// LogInfo describes the log and what the in-memory replay did.
type LogInfo struct {
	// External is set for a log on its own device (mkfs.xfs -l logdev=).
	External bool
	// Offset and Size locate the log on its device.
	Offset, Size int64
	// Dirty: the log needs recovery (its last record is not an unmount
	// record).
	Dirty bool
	// Replayed: the log was replayed into the in-memory overlay.
	Replayed bool
	// HeadBlock/TailBlock are basic-block (512 B) numbers in the log;
	// Head/TailCycle their cycles (what xfs_logprint prints as head and tail).
	HeadBlock, TailBlock int64
	HeadCycle, TailCycle uint32
	Records              int
	Transactions         int
	Buffers              int // buffer items applied
	Inodes               int // inode items applied
	ICreates             int // inode chunks initialised
	Cancelled            int // items skipped because their buffer was freed later
	NewerOnDisk          int // items skipped because the disk already had them (LSN)
	// Pending lists intents whose done item is not in the log: the kernel
	// would finish them after recovery.
	Pending []string
	// IntentsFinished counts the unfinished bmap intents (BUI) of Pending
	// the replay finished in memory, as the kernel's recovery does.
	IntentsFinished int
	// Problem is set when the replay stopped early (a bad record).
	Problem string
}

// Summary says in one line what the log held and what was done.
func (l *LogInfo) Summary() string {
	if !l.Dirty {
		return "log clean"
	}
	if !l.Replayed {
		s := fmt.Sprintf("log needs recovery (tail %d:%d, head %d:%d); not replayed", l.TailCycle, l.TailBlock, l.HeadCycle, l.HeadBlock)
		if l.Problem != "" {
			s += ": " + l.Problem
		}
		return s
	}
	s := fmt.Sprintf("log needed recovery: replayed in memory %d transactions from %d records (%d buffers, %d inodes, %d inode chunks; %d cancelled, %d already on disk)",
		l.Transactions, l.Records, l.Buffers, l.Inodes, l.ICreates, l.Cancelled, l.NewerOnDisk)
	if len(l.Pending) > 0 {
		s += "; unfinished intents: " + strings.Join(l.Pending, ", ")
		if l.IntentsFinished > 0 {
			s += fmt.Sprintf(" (%d BUI finished in memory)", l.IntentsFinished)
		}
	}
	if l.Problem != "" {
		s += "; stopped early: " + l.Problem
	}
	return s
}

// logDev is the log's device and geometry.
type logDev struct {
	r   io.ReaderAt
	off int64 // byte offset of the log on r
	n   int64 // basic blocks
}

func (d *logDev) readBBs(bb, n int64) ([]byte, error) {
	out := make([]byte, n*bbSize)
	for i := int64(0); i < n; {
		b := (bb + i) % d.n
		k := min(n-i, d.n-b)
		if _, err := d.r.ReadAt(out[i*bbSize:(i+k)*bbSize], d.off+b*bbSize); err != nil {
			return nil, fmt.Errorf("log read at block %d: %w", b, err)
		}
		i += k
	}
	return out, nil
}

func (d *logDev) cycle(bb int64) (uint32, error) {
	b, err := d.readBBs(bb, 1)
	if err != nil {
		return 0, err
	}
	if be.Uint32(b) == logMagic {
		return be.Uint32(b[4:]), nil
	}
	return be.Uint32(b), nil
}

// openLog finds the log, decides whether it needs recovery, and unless
// NoJournal replays it into an overlay that becomes the volume the reader
// sees.
func (f *FS) openLog() error {
	s := f.sb
	li := &f.Log
	var dev logDev
	if s.LogStart == 0 {
		li.External = true
		if f.opts.LogDevice == nil {
			f.note(0, -1, false, "external log device not given: the log was not examined")
			return nil
		}
		dev = logDev{r: f.opts.LogDevice, off: 0, n: int64(s.LogBlocks) << s.BlockLog / bbSize}
	} else {
		off, err := f.fsbOff(s.LogStart)
		if err != nil {
			f.note(0, 0, true, fmt.Sprintf("log start block %d: %v; the log was not examined", s.LogStart, err))
			return nil
		}
		dev = logDev{r: f.disk, off: off, n: int64(s.LogBlocks) << s.BlockLog / bbSize}
	}
	li.Offset, li.Size = dev.off, dev.n*bbSize
	if dev.n < 64 || dev.off+li.Size > sizeOf(dev.r, f.size, li.External) {
		f.note(0, dev.off, true, "log does not fit its device; the log was not examined")
		return nil
	}
	r := &logReplay{f: f, dev: &dev, li: li}
	if err := r.findHeadTail(); err != nil {
		li.Dirty = true
		li.Problem = err.Error()
		f.note(0, dev.off, true, "log: "+err.Error()+"; the log was not replayed")
		return nil
	}
	if !li.Dirty {
		return nil
	}
	if f.opts.NoJournal {
		f.note(0, dev.off, true, li.Summary()+" (--no-journal: the disk as it is)")
		return nil
	}
	r.replay()
	f.note(0, dev.off, li.Problem != "" || len(r.stalePending) > 0, li.Summary())
	// The superblock may have been logged.
	if b, err := r.ov.read(0, int(s.SectSize)); err == nil {
		if nsb, _, err := ParseSuperblock(b); err == nil && nsb.AGBlocks == s.AGBlocks && nsb.BlockSize == s.BlockSize {
			f.sb = nsb
		}
	}
	return nil
}

func sizeOf(r io.ReaderAt, fsSize int64, external bool) int64 {
	if !external {
		return fsSize
	}
	if v, ok := r.(interface{ Size() int64 }); ok {
		return v.Size()
	}
	return 1 << 62
}

type logReplay struct {
	f            *FS
	dev          *logDev
	li           *LogInfo
	ov           *overlay
	lastRec      int64 // BB of the last record's header
	endBlk       int64 // BB just after the last record
	stalePending []string
	pendingBUIs  []pendingBUI
}

type recHdr struct {
	cycle   uint32
	version uint32
	dataLen int64
	lsn     uint64
	tailLSN uint64
	crc     uint32
	nops    uint32
	size    uint32
	hblks   int64
	dblks   int64
}

func parseRecHdr(b []byte) (recHdr, error) {
	if be.Uint32(b) != logMagic {
		return recHdr{}, fmt.Errorf("no record header")
	}
	h := recHdr{
		cycle:   be.Uint32(b[4:]),
		version: be.Uint32(b[8:]),
		dataLen: int64(be.Uint32(b[12:])),
		lsn:     be.Uint64(b[16:]),
		tailLSN: be.Uint64(b[24:]),
		crc:     le.Uint32(b[32:]),
		nops:    be.Uint32(b[40:]),
		size:    be.Uint32(b[320:]),
	}
	if h.version != 1 && h.version != 2 {
		return h, fmt.Errorf("record version %d", h.version)
	}
	if h.dataLen < 0 || h.dataLen > logMaxRecord {
		return h, fmt.Errorf("record length %d", h.dataLen)
	}
	h.hblks = 1
	if h.version&logVersion2 != 0 && h.size > logHdrCycleSz {
		if h.size > logMaxRecord {
			return h, fmt.Errorf("record buffer size %d", h.size)
		}
		h.hblks = int64((h.size + logHdrCycleSz - 1) / logHdrCycleSz)
	}
	h.dblks = (h.dataLen + bbSize - 1) / bbSize
	if h.version&logVersion2 == 0 && h.dblks > logHdrCycleSz/bbSize {
		return h, fmt.Errorf("v1 record of %d blocks", h.dblks)
	}
	return h, nil
}

// findHeadTail finds the last record (the head) as the kernel does: the
// cycle number stamped in every basic block drops where writing stopped.
func (r *logReplay) findHeadTail() error {
	d := r.dev
	first, err := d.cycle(0)
	if err != nil {
		return err
	}
	if first == 0 {
		return nil // zeroed log: clean
	}
	last, err := d.cycle(d.n - 1)
	if err != nil {
		return err
	}
	head := d.n
	if first != last {
		lo, hi := int64(0), d.n-1
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			c, err := d.cycle(mid)
			if err != nil {
				return err
			}
			if c == first {
				lo = mid
			} else {
				hi = mid
			}
		}
		head = hi
	}
	// The last record header before the head.
	window := min(d.n, int64(8*logMaxRecord/bbSize+64))
	for i := int64(1); i <= window; i++ {
		bb := ((head-i)%d.n + d.n) % d.n
		b, err := d.readBBs(bb, 1)
		if err != nil {
			return err
		}
		if be.Uint32(b) != logMagic {
			continue
		}
		h, err := parseRecHdr(b)
		if err != nil || int64(uint32(h.lsn)) != bb || uint32(h.lsn>>32) != h.cycle {
			continue
		}
		r.lastRec = bb
		r.endBlk = (bb + h.hblks + h.dblks) % d.n
		r.li.HeadBlock, r.li.HeadCycle = r.endBlk, h.cycle
		if r.endBlk < bb {
			r.li.HeadCycle++
		}
		r.li.TailBlock, r.li.TailCycle = int64(uint32(h.tailLSN)), uint32(h.tailLSN>>32)
		if r.li.TailBlock >= d.n {
			return fmt.Errorf("tail block %d beyond the log", r.li.TailBlock)
		}
		// An unmount record as the last record: clean.
		if h.nops == 1 {
			data, err := d.readBBs(bb+h.hblks, max(h.dblks, 1))
			if err == nil && len(data) >= opHdrSize && data[9]&opUnmount != 0 {
				r.li.TailBlock, r.li.TailCycle = r.li.HeadBlock, r.li.HeadCycle
				return nil
			}
		}
		r.li.Dirty = true
		return nil
	}
	return fmt.Errorf("no record header within %d blocks before block %d", window, head%d.n)
}

// item is one log item: its regions, region 0 being the format structure.
type item struct {
	regions [][]byte
	total   int
}

func (it *item) typ() uint16 {
	if len(it.regions) == 0 || len(it.regions[0]) < 2 {
		return 0
	}
	return le.Uint16(it.regions[0])
}

type trans struct {
	lsn     uint64
	header  []byte
	items   []*item
	started bool
}

// replay reads the records from tail to head, gathers committed
// transactions and applies them in two passes (cancelled buffers first),
// as xlog_recover does.
func (r *logReplay) replay() {
	li, d := r.li, r.dev
	r.ov = newOverlay(r.f.disk)
	open := map[uint32]*trans{}
	var committed []*trans
	pos := li.TailBlock
	for n := int64(0); ; {
		b, err := d.readBBs(pos, 1)
		if err != nil {
			li.Problem = err.Error()
			break
		}
		h, err := parseRecHdr(b)
		if err != nil {
			li.Problem = fmt.Sprintf("log block %d: %v", pos, err)
			break
		}
		if int64(uint32(h.lsn)) != pos {
			li.Problem = fmt.Sprintf("log block %d: record says it is at block %d", pos, uint32(h.lsn))
			break
		}
		hdrs, err := d.readBBs(pos, h.hblks)
		if err != nil {
			li.Problem = err.Error()
			break
		}
		data, err := d.readBBs(pos+h.hblks, h.dblks)
		if err != nil {
			li.Problem = err.Error()
			break
		}
		if h.crc != 0 && !recordCRCOK(hdrs, data[:h.dataLen], h) {
			li.Problem = fmt.Sprintf("log record at block %d: checksum mismatch (torn write); later records ignored", pos)
			r.f.note(0, d.off+pos*bbSize, true, li.Problem)
			break
		}
		// Put back the first word of every data block (replaced by the cycle).
		for i := int64(0); i < h.dblks; i++ {
			j, k := i/(logHdrCycleSz/bbSize), i%(logHdrCycleSz/bbSize)
			var w uint32
			if j == 0 {
				w = be.Uint32(hdrs[44+k*4:])
			} else if j < h.hblks {
				w = be.Uint32(hdrs[j*bbSize+4+k*4:])
			} else {
				break
			}
			be.PutUint32(data[i*bbSize:], w)
		}
		data = data[:h.dataLen]
		li.Records++
		if err := r.parseOps(data, h, open, &committed); err != nil {
			li.Problem = fmt.Sprintf("log record at block %d: %v", pos, err)
			break
		}
		if pos == r.lastRec {
			break
		}
		adv := h.hblks + h.dblks
		pos = (pos + adv) % d.n
		if n += adv; n > d.n {
			li.Problem = "log walk did not reach the head"
			break
		}
	}
	li.Transactions = len(committed)
	r.apply(committed)
	li.Replayed = true
	r.f.vol = r.ov
	r.f.icmu.Lock()
	r.f.icache = nil // blocks read before the replay
	r.f.icmu.Unlock()
	r.stalePending = append(r.stalePending, r.finishBmapIntents(r.pendingBUIs)...)
	r.noteStaleIntents()
}

func recordCRCOK(hdrs, data []byte, h recHdr) bool {
	for _, hl := range []int{328, 324} {
		crc := crc32Start(hdrs[:hl], 32)
		xheads := (int64(len(data)) + logHdrCycleSz - 1) / logHdrCycleSz
		for i := int64(1); i < xheads && i < h.hblks; i++ {
			crc = crc32Cont(crc, hdrs[i*bbSize:i*bbSize+260])
		}
		crc = crc32Cont(crc, data)
		if ^crc == h.crc {
			return true
		}
	}
	return false
}

func (r *logReplay) parseOps(data []byte, h recHdr, open map[uint32]*trans, committed *[]*trans) error {
	p := 0
	for nops := h.nops; p < len(data) && nops > 0; nops-- {
		if p+opHdrSize > len(data) {
			return fmt.Errorf("op header truncated")
		}
		tid := be.Uint32(data[p:])
		n := int(be.Uint32(data[p+4:]))
		client, flags := data[p+8], data[p+9]
		p += opHdrSize
		if client != clientTrans && client != clientLog {
			return fmt.Errorf("op with client id %#x", client)
		}
		if n < 0 || p+n > len(data) {
			return fmt.Errorf("op length %d beyond the record", n)
		}
		body := data[p : p+n]
		p += n
		t := open[tid]
		if t == nil {
			if flags&opStart != 0 {
				open[tid] = &trans{lsn: h.lsn}
			}
			continue // an op of a transaction that began before the tail
		}
		flags &^= opEnd
		if flags&opWasCont != 0 {
			flags &^= opContinue
		}
		switch flags {
		case 0, opContinue:
			if err := t.add(body); err != nil {
				return err
			}
		case opWasCont:
			t.cont(body)
		case opCommit:
			*committed = append(*committed, t)
			delete(open, tid)
		case opUnmount:
			delete(open, tid)
		default:
			return fmt.Errorf("op flags %#x", flags)
		}
	}
	return nil
}

func (t *trans) add(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if !t.started {
		if len(t.header) == 0 && (len(b) < 4 || le.Uint32(b) != transMagic) {
			return fmt.Errorf("transaction without a header")
		}
		t.header = append(t.header, b...)
		if len(t.header) > transHdrSize {
			return fmt.Errorf("transaction header of %d bytes", len(t.header))
		}
		if len(t.header) == transHdrSize {
			t.started = true
			t.items = append(t.items, &item{})
		}
		return nil
	}
	it := t.items[len(t.items)-1]
	if it.total != 0 && it.total == len(it.regions) {
		it = &item{}
		t.items = append(t.items, it)
	}
	if it.total == 0 {
		if len(b) < 4 {
			return fmt.Errorf("log item format of %d bytes", len(b))
		}
		it.total = int(le.Uint16(b[2:]))
		if it.total == 0 || it.total > maxRegions {
			return fmt.Errorf("log item with %d regions", it.total)
		}
	}
	if len(it.regions) >= it.total {
		return fmt.Errorf("log item has more regions than its %d", it.total)
	}
	it.regions = append(it.regions, append([]byte(nil), b...))
	return nil
}

func (t *trans) cont(b []byte) {
	if !t.started {
		t.header = append(t.header, b...)
		if len(t.header) >= transHdrSize {
			t.header = t.header[:transHdrSize]
			t.started = true
			t.items = append(t.items, &item{})
		}
		return
	}
	it := t.items[len(t.items)-1]
	if len(it.regions) == 0 {
		return
	}
	it.regions[len(it.regions)-1] = append(it.regions[len(it.regions)-1], b...)
}

type bufKey struct{ blkno, len int64 }

// apply replays committed transactions: pass 1 counts cancelled buffers,
// pass 2 applies buffers, inode items and icreates in log order, skipping
// buffers freed by a later cancel record and items the disk already has.
func (r *logReplay) apply(ts []*trans) {
	cancel := map[bufKey]int{}
	for _, t := range ts {
		for _, it := range t.items {
			if it.typ() == liBuf && len(it.regions[0]) >= 20 && le.Uint16(it.regions[0][4:])&blfCancel != 0 {
				cancel[bufKey{int64(le.Uint64(it.regions[0][8:])), int64(le.Uint16(it.regions[0][6:]))}]++
			}
		}
	}
	cancelled := func(blkno, n int64) bool { return cancel[bufKey{blkno, n}] > 0 }
	intents := map[uint64]string{}
	buis := map[uint64]pendingBUI{}
	var order []uint64
	for _, t := range ts {
		// Within a transaction: buffers, then inodes and the rest, and
		// cancelled buffers last (xlog_recover_reorder_trans), so an
		// inode freed with its cluster in one transaction is skipped.
		its := append([]*item(nil), t.items...)
		rank := func(it *item) int {
			if it.typ() != liBuf {
				return 1
			}
			if f0 := it.regions[0]; len(f0) >= 6 && le.Uint16(f0[4:])&blfCancel != 0 {
				return 2
			}
			return 0
		}
		sort.SliceStable(its, func(i, j int) bool { return rank(its[i]) < rank(its[j]) })
		for _, it := range its {
			if len(it.regions) == 0 {
				continue
			}
			f0 := it.regions[0]
			switch it.typ() {
			case liBuf:
				if len(f0) < 20 {
					continue
				}
				k := bufKey{int64(le.Uint64(f0[8:])), int64(le.Uint16(f0[6:]))}
				if le.Uint16(f0[4:])&blfCancel != 0 {
					if cancel[k]--; cancel[k] <= 0 {
						delete(cancel, k)
					}
					continue
				}
				if cancelled(k.blkno, k.len) {
					r.li.Cancelled++
					continue
				}
				r.applyBuf(t, it)
			case liInode:
				r.applyInode(t, it, cancelled)
			case liICreate:
				r.applyICreate(t, it, cancelled)
			case liEFI, liRUI, liCUI, liBUI, liATTRI, liXMI:
				if len(f0) >= 16 {
					id := le.Uint64(f0[8:])
					if _, ok := intents[id]; !ok {
						order = append(order, id)
					}
					intents[id] = intentName(it.typ())
					if it.typ() == liBUI {
						if fork, ops, ok := r.f.parseBUI(f0); ok {
							buis[id] = pendingBUI{fork, ops}
						}
					}
				}
			case liEFD, liRUD, liCUD, liBUD, liATTRD, liXMD:
				if len(f0) >= 16 {
					delete(intents, le.Uint64(f0[8:]))
				}
			}
		}
	}
	for _, id := range order {
		if n, ok := intents[id]; ok {
			r.li.Pending = append(r.li.Pending, n)
			switch b, finish := buis[id]; {
			case n == "EFI" || n == "RUI" || n == "CUI":
				// Free space, reverse maps and reference counts: the
				// kernel finishes them after recovery; nothing a reader
				// of files sees changes.
			case finish:
				// Finished after the replay (finishBmapIntents).
				r.pendingBUIs = append(r.pendingBUIs, b)
			default:
				r.stalePending = append(r.stalePending, n)
			}
		}
	}
}

// noteStaleIntents says which unfinished intents the view lacks.
func (r *logReplay) noteStaleIntents() {
	if len(r.stalePending) > 0 {
		r.f.note(0, r.dev.off, true, fmt.Sprintf("log: %d unfinished file-mapping/attr/exchange intents (%s) are not applied; those files may show their state before the operation", len(r.stalePending), strings.Join(r.stalePending, ", ")))
	}
}

func intentName(t uint16) string {
	return map[uint16]string{liEFI: "EFI", liRUI: "RUI", liCUI: "CUI", liBUI: "BUI", liATTRI: "ATTRI", liXMI: "XMI"}[t]
}

// bufLSN returns the LSN stamped in a v5 metadata block, or 0 when the
// block has none this reader knows (xlog_recover_get_buf_lsn).
func bufLSN(b []byte) uint64 {
	if len(b) < 512 {
		return 0
	}
	switch be.Uint32(b) {
	case 0x41423342, 0x41423343, 0x49414233, 0x46494233, 0x524d4233, 0x52334643: // AB3B AB3C IAB3 FIB3 RMB3 R3FC
		return be.Uint64(b[24:])
	case bmap3Magic:
		return be.Uint64(b[32:])
	case agfMagic:
		return be.Uint64(b[208:])
	case agiMagic:
		return be.Uint64(b[320:])
	case 0x5841464c: // XAFL
		return be.Uint64(b[16:])
	case dir3BlockMagic, dir3DataMagic, 0x58444633: // XDF3
		return be.Uint64(b[16:])
	case 0x58534c4d: // XSLM
		return be.Uint64(b[48:])
	case sbMagic:
		return be.Uint64(b[240:])
	}
	switch be.Uint16(b[8:]) {
	case 0x3df1, 0x3dff, da3NodeMagic, attr3LeafMagic: // dir3 leaf1, leafn, da3 node, attr3 leaf
		return be.Uint64(b[24:])
	}
	return 0
}

func (r *logReplay) applyBuf(t *trans, it *item) {
	f0 := it.regions[0]
	flags := le.Uint16(f0[4:])
	if flags&(blfUDquot|blfPDquot|blfGDquot) != 0 {
		return // quota: not what a reader of files sees
	}
	blkno := int64(le.Uint64(f0[8:]))
	n := int64(le.Uint16(f0[6:])) * bbSize
	mapWords := int(le.Uint32(f0[16:]))
	if mapWords < 0 || 20+mapWords*4 > len(f0) || n <= 0 || blkno < 0 || (blkno*bbSize+n) > r.f.size {
		return
	}
	off := blkno * bbSize
	cur, err := r.ov.read(off, int(n))
	if err != nil {
		return
	}
	if r.f.sb.HasCRC() {
		if lsn := bufLSN(cur); lsn != 0 && lsn != ^uint64(0) && lsn >= t.lsn {
			r.li.NewerOnDisk++
			return
		}
	}
	bit := func(i int) bool { return le.Uint32(f0[20+(i/32)*4:])&(1<<(i%32)) != 0 }
	nbits := mapWords * 32
	ri := 1
	var unl []int
	for i := 0; i < nbits && ri < len(it.regions); {
		if !bit(i) {
			i++
			continue
		}
		j := i
		for j < nbits && bit(j) {
			j++
		}
		cnt := j - i
		reg := it.regions[ri]
		if len(reg) < cnt*blfChunk {
			cnt = len(reg) / blfChunk
		}
		start := int64(i * blfChunk)
		end := min(start+int64(cnt*blfChunk), n)
		if start < end {
			if flags&blfInodeBuf != 0 {
				// Inode buffers: only the unlinked-list pointers are replayed.
				isz := int64(r.f.sb.InodeSize)
				for ino := start / isz * isz; ino < end; ino += isz {
					p := ino + inodeNextUnlnk
					if p >= start && p+4 <= end {
						copy(cur[p:p+4], reg[p-start:])
						unl = append(unl, int(ino))
					}
				}
			} else {
				copy(cur[start:end], reg)
			}
		}
		ri++
		i += max(cnt, 1)
	}
	if flags&blfInodeBuf != 0 && r.f.sb.HasCRC() {
		isz := int(r.f.sb.InodeSize)
		for _, o := range unl {
			if o+isz <= len(cur) {
				le.PutUint32(cur[o+inodeCRCOff:], crcOf(cur[o:o+isz], inodeCRCOff))
			}
		}
	}
	if r.f.sb.HasCRC() && flags&blfInodeBuf == 0 {
		// The kernel's write verifiers stamp the checksum when the
		// replayed buffer is written back; do the same in memory.
		if o := bufCRCOffset(cur); o > 0 {
			le.PutUint32(cur[o:], crcOf(cur, o))
		}
	}
	if r.ov.write(off, cur) == nil {
		r.li.Buffers++
	}
}

// bufCRCOffset returns where a v5 metadata block of the whole buffer b
// keeps its CRC, or 0 when this reader does not know the block.
func bufCRCOffset(b []byte) int {
	switch be.Uint32(b) {
	case 0x41423342, 0x41423343, 0x49414233, 0x46494233, 0x524d4233, 0x52334643: // short btree blocks
		return sblockCRCO
	case bmap3Magic:
		return lblockCRCOf
	case agfMagic:
		return agfCRCOff
	case agiMagic:
		return agiCRCOff
	case 0x5841464c: // XAFL
		return 32
	case dir3BlockMagic, dir3DataMagic, 0x58444633: // XDB3 XDD3 XDF3
		return dir3CRCOff
	case 0x58534c4d: // XSLM (one block per buffer)
		return 12
	case sbMagic:
		return sbCRCOff
	}
	switch be.Uint16(b[8:]) {
	case 0x3df1, 0x3dff, da3NodeMagic, attr3LeafMagic:
		return da3CRCOff
	}
	return 0
}

// logDinodeToDisk converts a logged inode core (struct xfs_log_dinode, in
// the writer's byte order) into the disk format, as xfs_log_dinode_to_disk.
func logDinodeToDisk(l, d []byte, v3 bool, lsn uint64) {
	put16 := func(o int) { be.PutUint16(d[o:], le.Uint16(l[o:])) }
	put32 := func(o int) { be.PutUint32(d[o:], le.Uint32(l[o:])) }
	put64 := func(o int) { be.PutUint64(d[o:], le.Uint64(l[o:])) }
	put16(0)
	put16(2)
	d[4], d[5] = l[4], l[5]
	put32(8)
	put32(12)
	put32(16)
	put16(20)
	put16(22)
	var flags2 uint64
	if v3 {
		flags2 = le.Uint64(l[120:])
	}
	big := flags2&diflag2Bigtime != 0
	ts := func(o int) {
		if big {
			put64(o)
		} else {
			put32(o)
			put32(o + 4)
		}
	}
	if flags2&diflag2Nrext64 != 0 {
		put64(24)
		put32(76)
		put16(80)
	} else {
		if v3 {
			clear(d[24:32])
		} else {
			clear(d[24:30])
			put16(30)
		}
		put32(76)
		put16(80)
	}
	ts(32)
	ts(40)
	ts(48)
	put64(56)
	put64(64)
	put32(72)
	d[82], d[83] = l[82], l[83]
	put32(84)
	put16(88)
	put16(90)
	put32(92)
	if v3 {
		put32(96)
		put64(104)
		be.PutUint64(d[112:], lsn)
		put64(120)
		put32(128)
		clear(d[132:144])
		ts(144)
		put64(152)
		copy(d[160:176], l[160:176])
	}
}

func (r *logReplay) applyInode(t *trans, it *item, cancelled func(int64, int64) bool) {
	f0 := it.regions[0]
	var fields uint32
	var asize, dsize int
	var rdev uint32
	var blkno int64
	var blen, boff int32
	switch len(f0) {
	case 56:
		fields, asize, dsize = le.Uint32(f0[4:]), int(le.Uint16(f0[8:])), int(le.Uint16(f0[10:]))
		rdev = le.Uint32(f0[24:])
		blkno, blen, boff = int64(le.Uint64(f0[40:])), int32(le.Uint32(f0[48:])), int32(le.Uint32(f0[52:]))
	case 52:
		fields, asize, dsize = le.Uint32(f0[4:]), int(le.Uint16(f0[8:])), int(le.Uint16(f0[10:]))
		rdev = le.Uint32(f0[20:])
		blkno, blen, boff = int64(le.Uint64(f0[36:])), int32(le.Uint32(f0[44:])), int32(le.Uint32(f0[48:]))
	default:
		return
	}
	_, _ = asize, dsize
	if cancelled(blkno, int64(blen)) {
		r.li.Cancelled++
		return
	}
	if len(it.regions) < 2 {
		return
	}
	isz := int(r.f.sb.InodeSize)
	off := blkno*bbSize + int64(boff)
	if boff < 0 || off+int64(isz) > r.f.size {
		return
	}
	d, err := r.ov.read(off, isz)
	if err != nil || be.Uint16(d) != inodeMagic {
		r.f.note(0, off, false, "log: inode item for a block without an inode; skipped")
		return
	}
	l := it.regions[1]
	if len(l) < 96 || le.Uint16(l) != inodeMagic {
		return
	}
	v3 := l[4] == 3
	if v3 && len(l) < dicoreV3Size {
		return
	}
	if v3 {
		if lsn := be.Uint64(d[112:]); lsn != 0 && lsn != ^uint64(0) && lsn > t.lsn {
			r.li.NewerOnDisk++
			return
		}
	} else if lf, df := le.Uint16(l[30:]), be.Uint16(d[30:]); lf < df && !(df == 0xffff && lf < 0xffff>>1) {
		r.li.NewerOnDisk++
		return
	}
	logDinodeToDisk(l, d, v3, t.lsn)
	lit := dicoreV2Size
	if v3 {
		lit = dicoreV3Size
	}
	forkoff := int(d[82]) * 8
	dEnd, aStart := isz, isz
	if forkoff != 0 {
		dEnd, aStart = lit+forkoff, lit+forkoff
	}
	if dEnd > isz {
		return
	}
	if fields&ilogDev != 0 && lit+4 <= isz {
		be.PutUint32(d[lit:], rdev)
	}
	ri := 2
	if fields&ilogDFork != 0 && ri < len(it.regions) {
		src := it.regions[ri]
		dst := d[lit:dEnd]
		switch fields & ilogDFork {
		case ilogDData, ilogDExt:
			copy(dst, src)
		case ilogDBroot:
			r.bmbtToBmdr(src, dst)
		}
		ri++
	}
	if fields&ilogAFork != 0 && ri < len(it.regions) && aStart < isz {
		src := it.regions[ri]
		dst := d[aStart:isz]
		switch fields & ilogAFork {
		case ilogAData, ilogAExt:
			copy(dst, src)
		case ilogABroot:
			r.bmbtToBmdr(src, dst)
		}
	}
	if v3 {
		le.PutUint32(d[inodeCRCOff:], crcOf(d, inodeCRCOff))
	}
	if r.ov.write(off, d) == nil {
		r.li.Inodes++
	}
}

// bmbtToBmdr converts an in-core btree root (a long-format btree block
// header, keys and pointers sized for its length) to the on-disk root.
func (r *logReplay) bmbtToBmdr(src, dst []byte) {
	hdr := lblockLen
	if r.f.sb.HasCRC() {
		hdr = lblockCRC
	}
	if len(src) < hdr || len(dst) < 4 {
		return
	}
	level, nrecs := be.Uint16(src[4:]), int(be.Uint16(src[6:]))
	smax := (len(src) - hdr) / 16
	dmax := (len(dst) - 4) / 16
	if nrecs > smax || nrecs > dmax {
		return
	}
	clear(dst)
	be.PutUint16(dst, level)
	be.PutUint16(dst[2:], uint16(nrecs))
	copy(dst[4:4+nrecs*8], src[hdr:hdr+nrecs*8])
	copy(dst[4+dmax*8:4+dmax*8+nrecs*8], src[hdr+smax*8:hdr+smax*8+nrecs*8])
}

func (r *logReplay) applyICreate(t *trans, it *item, cancelled func(int64, int64) bool) {
	f0 := it.regions[0]
	if len(f0) < 28 {
		return
	}
	s := r.f.sb
	agno, agbno, count := be.Uint32(f0[4:]), be.Uint32(f0[8:]), be.Uint32(f0[12:])
	isize, length, gen := be.Uint32(f0[16:]), be.Uint32(f0[20:]), be.Uint32(f0[24:])
	if agno >= s.AGCount || agbno >= s.AGBlocks || length == 0 || uint64(agbno)+uint64(length) > uint64(s.AGBlocks) ||
		isize != uint32(s.InodeSize) || count == 0 || uint64(count)*uint64(isize) > uint64(length)<<s.BlockLog {
		r.f.note(0, r.dev.off, false, "log: bad icreate item; skipped")
		return
	}
	base := r.f.agOff(agno) + int64(agbno)<<s.BlockLog
	// Skip when the chunk's buffers were freed later in the log.
	clusterBytes := int64(8192)
	if s.HasCRC() {
		if big := clusterBytes * int64(s.InodeSize) / 256; uint64(s.InoAlignMt) >= uint64(big>>s.BlockLog) {
			clusterBytes = big
		}
	}
	clusterBytes = max(clusterBytes, int64(s.BlockSize))
	for o := int64(0); o < int64(length)<<s.BlockLog; o += clusterBytes {
		if cancelled((base+o)/bbSize, clusterBytes/bbSize) {
			r.li.Cancelled++
			return
		}
	}
	buf := make([]byte, int64(count)*int64(isize))
	for i := uint32(0); i < count; i++ {
		d := buf[i*isize : (i+1)*isize]
		be.PutUint16(d, inodeMagic)
		if s.HasCRC() {
			d[4] = 3
		} else {
			d[4] = 2
		}
		be.PutUint32(d[92:], gen)
		be.PutUint32(d[96:], nullAgino)
		if s.HasCRC() {
			agino := uint64(agbno)<<s.InoPBLog + uint64(i)
			be.PutUint64(d[152:], uint64(agno)<<(s.AGBlkLog+s.InoPBLog)|agino)
			copy(d[160:176], s.MetaUUID[:])
			le.PutUint32(d[inodeCRCOff:], crcOf(d, inodeCRCOff))
		}
	}
	if r.ov.write(base, buf) == nil {
		r.li.ICreates++
	}
}
