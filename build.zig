// Builds the fully static shardid binary for x86_64-linux-musl with zig cc.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{
        .default_target = .{ .cpu_arch = .x86_64, .os_tag = .linux, .abi = .musl },
    });
    // ReleaseSafe keeps bounds/UB traps; C code gets -O2 plus hardening flags below.
    const optimize = b.standardOptimizeOption(.{ .preferred_optimize_mode = .ReleaseSmall });
    const version = b.option([]const u8, "version", "version string") orelse "0.1.0";
    const test_hooks = b.option(bool, "test-hooks", "compile test-only hooks (never in releases)") orelse false;

    const exe = b.addExecutable(.{
        .name = "shardid",
        .target = target,
        .optimize = optimize,
        .linkage = .static,
    });
    exe.linkLibC();

    var flags = std.ArrayList([]const u8).init(b.allocator);
    flags.appendSlice(&.{
        "-std=c11",
        "-D_GNU_SOURCE",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-O2",
        "-fno-sanitize=undefined", // zig cc's default UBSan traps bloat the binary; ASan+UBSan builds run in make test
        "-fstack-protector-strong",
        "-ffunction-sections",
        "-fdata-sections",
    }) catch @panic("oom");
    flags.append(b.fmt("-DSHARDID_VERSION=\"{s}\"", .{version})) catch @panic("oom");
    if (test_hooks) flags.append("-DSHARDID_TEST_HOOKS=1") catch @panic("oom");

    var dir = std.fs.cwd().openDir("src", .{ .iterate = true }) catch @panic("no src/");
    defer dir.close();
    var it = dir.iterate();
    var files = std.ArrayList([]const u8).init(b.allocator);
    while (it.next() catch @panic("readdir")) |entry| {
        if (entry.kind == .file and std.mem.endsWith(u8, entry.name, ".c"))
            files.append(b.dupe(entry.name)) catch @panic("oom");
    }
    std.mem.sort([]const u8, files.items, {}, struct {
        fn lt(_: void, a: []const u8, c: []const u8) bool {
            return std.mem.lessThan(u8, a, c);
        }
    }.lt);
    exe.addCSourceFiles(.{ .root = b.path("src"), .files = files.items, .flags = flags.items });
    exe.link_gc_sections = true;
    exe.root_module.strip = true;
    b.installArtifact(exe);
}
