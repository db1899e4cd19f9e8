// Builds the fully static shardid binary for x86_64-linux-musl with zig cc.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{
        .default_target = .{ .cpu_arch = .x86_64, .os_tag = .linux, .abi = .musl },
    });
    // Release by default (plain `zig build` would mean Debug); C code also gets
    // -O2 and the hardening flags below.
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "optimization mode") orelse .ReleaseFast;
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
    // Start-up, configuration and Consul code is optimised for size, the
    // request path (idtype.c's entity-name check included) for speed: the
    // binary stays small without slowing IDs.
    const cold = [_][]const u8{ "config.c", "consul.c", "consul_core.c", "shard_kv.c", "store_kv.c", "http_client.c", "http_response.c", "log.c", "main.c", "metrics.c" };
    var hot_files = std.ArrayList([]const u8).init(b.allocator);
    var cold_files = std.ArrayList([]const u8).init(b.allocator);
    for (files.items) |name| {
        var is_cold = false;
        for (cold) |c| is_cold = is_cold or std.mem.eql(u8, name, c);
        (if (is_cold) &cold_files else &hot_files).append(name) catch @panic("oom");
    }
    var cold_flags = std.ArrayList([]const u8).init(b.allocator);
    cold_flags.appendSlice(flags.items) catch @panic("oom");
    cold_flags.append("-Os") catch @panic("oom");
    exe.addCSourceFiles(.{ .root = b.path("src"), .files = hot_files.items, .flags = flags.items });
    exe.addCSourceFiles(.{ .root = b.path("src"), .files = cold_files.items, .flags = cold_flags.items });
    exe.link_gc_sections = true;
    exe.root_module.strip = true;
    b.installArtifact(exe);
}
