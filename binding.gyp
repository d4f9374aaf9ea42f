{
  "targets": [
    {
      "target_name": "sockswitch",
      "sources": [
        "native/addon/addon.c",
        "native/addon/answer.c",
        "native/addon/bpf.c",
        "native/addon/bpf-ring.c",
        "native/addon/closer.c",
        "native/addon/dgram.c",
        "native/addon/diag.c",
        "native/addon/fdops.c",
        "native/addon/kernel.c",
        "native/addon/netns.c",
        "native/addon/notify.c",
        "native/addon/poll.c",
        "native/addon/proc.c",
        "native/addon/ptrace.c",
        "native/addon/responder.c",
        "native/addon/unix.c",
        "native/shared/rtnl.c"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "cflags!": ["-O3"],
      "conditions": [
        [
          "<!(cat native/bpf/out/enabled 2>/dev/null || echo 0)==1",
          {
            "defines": ["SW_HAVE_BPF=1"],
            "include_dirs": ["native/bpf/out"],
            "libraries": ["-lbpf"]
          }
        ]
      ]
    }
  ]
}
