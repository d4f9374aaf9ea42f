// A classic BPF interpreter for the filter's unit tests (test/unit/filter.test.ts): only the
// opcodes src/trap/filter.ts emits, run over a struct seccomp_data buffer as the kernel's
// seccomp does (seccomp(2), Documentation/networking/filter.rst); anything else fails the test.

import assert from "node:assert/strict";

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

export function decode(prog: Buffer): Insn[] {
  const out: Insn[] = [];
  for (let off = 0; off < prog.length; off += 8) {
    out.push({
      code: prog.readUInt16LE(off),
      jt: prog.readUInt8(off + 2),
      jf: prog.readUInt8(off + 3),
      k: prog.readUInt32LE(off + 4),
    });
  }
  return out;
}

/** Runs a classic BPF program as the kernel's seccomp does; returns the action (u32). */
export function run(prog: Buffer, data: Buffer): number {
  const insns = decode(prog);
  let a = 0;
  let pc = 0;
  for (let steps = 0; steps < 10_000; steps++) {
    const insn = insns[pc];
    assert.ok(insn, `pc ${pc} ran off the end of the program`);
    switch (insn.code) {
      case 0x20: // BPF_LD | BPF_W | BPF_ABS
        assert.ok(insn.k % 4 === 0 && insn.k + 4 <= data.length, `bad load offset ${insn.k}`);
        a = data.readUInt32LE(insn.k);
        pc += 1;
        break;
      case 0x15: // BPF_JMP | BPF_JEQ | BPF_K
        pc += 1 + (a === insn.k ? insn.jt : insn.jf);
        break;
      case 0x35: // BPF_JMP | BPF_JGE | BPF_K
        pc += 1 + (a >= insn.k ? insn.jt : insn.jf);
        break;
      case 0x45: // BPF_JMP | BPF_JSET | BPF_K
        pc += 1 + ((a & insn.k) >>> 0 !== 0 ? insn.jt : insn.jf);
        break;
      case 0x54: // BPF_ALU | BPF_AND | BPF_K
        a = (a & insn.k) >>> 0;
        pc += 1;
        break;
      case 0x06: // BPF_RET | BPF_K
        return insn.k >>> 0;
      default:
        assert.fail(`unexpected opcode 0x${insn.code.toString(16)} at ${pc}`);
    }
  }
  assert.fail("program did not terminate");
}
