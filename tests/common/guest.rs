//! A real KVM/TCG guest for the root tests: Debian's cloud kernel and a busybox initramfs
//! built from the host's packages (`linux-image-cloud-amd64`, `busybox-static`), booted with
//! qemu on a tap as that tap's unprivileged owner. The initramfs is cached under `target/`.
//!
//! The guest's init loads the virtio-net modules, asks for a lease with udhcpc, resolves the
//! names it is given, then connects to a TCP server once a second, forever; every step is
//! reported on the serial console as a `GUEST …` line, which the test reads from a file.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The modules virtio-net needs, by name; their order and files come from `modprobe`.
const MODULES: [&str; 2] = ["virtio_pci", "virtio_net"];

/// The guest's /init. `nc.probe` on the kernel command line only says it started (the KVM
/// probe); `nc.names=a,b` are resolved, `nc.server=IP:PORT` is fetched from.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "GUEST $*" > /dev/console; }
arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^nc\.$1=//p"; }
if grep -q nc.probe /proc/cmdline; then say probe ok; poweroff -f; fi
for m in $(cat /modules.order); do insmod "/lib/modules/$m.ko" || say "insmod $m failed"; done
ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -s /lease.sh -n -q -t 30 -T 1 || say "no lease"
domain=$(cat /domain 2>/dev/null)
for h in $(arg names | tr ',' ' '); do
  a=$(nslookup -type=a "$h.$domain" | awk '/^Name:/ { n = 1 } n && /^Address/ { print $2 }')
  say "resolve $h ${a:-none}"
done
server=$(arg server)
i=0
while true; do
  i=$((i + 1))
  r=$(echo hello | nc -w 2 ${server%:*} ${server#*:})
  say "fetch $i ${r:-failed}"
  sleep 1
done
"#;

/// udhcpc's script: configure the lease and report it (`$mask` is a prefix length here).
const LEASE: &str = r#"#!/bin/sh
case "$1" in
bound|renew)
  ip addr flush dev "$interface"
  ip addr add "$ip/$mask" dev "$interface"
  set -- $router
  ip route replace default via "$1"
  : > /etc/resolv.conf
  for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done
  echo "$domain" > /domain
  echo "GUEST lease ip=$ip mask=$mask router=$router dns=$dns domain=$domain" > /dev/console
  ;;
esac
"#;

/// Why the guest cannot run on this host (a package is missing).
pub fn missing() -> Option<String> {
    let static_busybox = Command::new("ldd")
        .arg("/bin/busybox")
        .output()
        .is_ok_and(|o| !o.status.success());
    let wanted = [
        (program("qemu-system-x86_64"), "qemu-system-x86"),
        (kernel().is_some(), "linux-image-cloud-amd64"),
        (static_busybox, "busybox-static"),
        (program("cpio"), "cpio"),
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, p)| *p)
        .collect();
    (!missing.is_empty()).then(|| format!("needs the packages {}", missing.join(", ")))
}

fn program(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The newest installed cloud kernel: (version, vmlinuz).
fn kernel() -> Option<(String, PathBuf)> {
    let mut versions: Vec<String> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("vmlinuz-")
                .filter(|v| v.ends_with("-cloud-amd64"))
                .map(str::to_string)
        })
        .filter(|v| Path::new("/lib/modules").join(v).is_dir())
        .collect();
    versions.sort();
    let v = versions.pop()?;
    let path = PathBuf::from(format!("/boot/vmlinuz-{v}"));
    Some((v, path))
}

/// The kernel and initramfs to boot.
pub struct Image {
    /// vmlinuz.
    pub kernel: PathBuf,
    /// The cached initramfs.
    pub initrd: PathBuf,
    /// Where the image is cached (the accelerator probe's answer is kept there too).
    dir: PathBuf,
}

/// `target/`, from the test binary's path (`target/debug/deps/…`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "target"))
        .map(Path::to_path_buf)
        .unwrap_or_else(|| super::repo().join("target"))
}

/// The guest image, built once per kernel version and init script into `target/kvm-guest/`.
pub fn image() -> Image {
    let (version, kernel) = kernel().expect("a cloud kernel (see missing())");
    let mut h = DefaultHasher::new();
    (INIT, LEASE, MODULES).hash(&mut h);
    let dir = target_dir()
        .join("kvm-guest")
        .join(format!("{version}-{:016x}", h.finish()));
    let initrd = dir.join("initrd.img");
    if !initrd.exists() {
        build(&version, &dir);
    }
    Image {
        kernel,
        initrd,
        dir,
    }
}

/// The module files `modprobe` would load for MODULES, in load order, without duplicates.
fn module_files(version: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for m in MODULES {
        let out = Command::new("modprobe")
            .args(["-S", version, "--show-depends", m])
            .output()
            .expect("modprobe");
        assert!(out.status.success(), "modprobe --show-depends {m}");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // `builtin NAME` lines need nothing.
            if let Some(path) = line.strip_prefix("insmod ") {
                let p = PathBuf::from(path.trim());
                if !files.contains(&p) {
                    files.push(p);
                }
            }
        }
    }
    files
}

/// Copy a module into the image uncompressed (busybox insmod reads plain `.ko` only), and
/// return its name.
fn copy_module(src: &Path, modules: &Path) -> String {
    let file = src.file_name().unwrap().to_string_lossy().into_owned();
    let (name, unpack) = match file.rsplit_once(".ko") {
        Some((n, ".xz")) => (n, Some("xz")),
        Some((n, ".zst")) => (n, Some("zstd")),
        Some((n, ".gz")) => (n, Some("gzip")),
        Some((n, "")) => (n, None),
        _ => panic!("not a module: {}", src.display()),
    };
    let dst = modules.join(format!("{name}.ko"));
    match unpack {
        None => {
            std::fs::copy(src, &dst).expect("copy module");
        }
        Some(tool) => {
            let out = Command::new(tool)
                .arg("-dc")
                .arg(src)
                .output()
                .expect("decompress");
            assert!(out.status.success(), "{tool} -dc {}", src.display());
            std::fs::write(&dst, out.stdout).expect("write module");
        }
    }
    name.to_string()
}

fn build(version: &str, dir: &Path) {
    let root = dir.join("root");
    let _ = std::fs::remove_dir_all(dir);
    for sub in ["bin", "lib/modules", "proc", "sys", "dev", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox");
    let names: Vec<String> = module_files(version)
        .iter()
        .map(|f| copy_module(f, &root.join("lib/modules")))
        .collect();
    std::fs::write(root.join("modules.order"), names.join("\n") + "\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (name, text) in [("init", INIT), ("lease.sh", LEASE)] {
        let p = root.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let tmp = dir.join("initrd.img.tmp");
    let script = format!(
        "cd {} && find . | cpio -o -H newc --quiet | gzip -1 > {}",
        root.display(),
        tmp.display()
    );
    super::sh(&script);
    std::fs::rename(&tmp, dir.join("initrd.img")).expect("rename initrd");
}

/// How qemu runs the guest on this host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation through /dev/kvm.
    Kvm,
    /// qemu's emulator (this project's VM offers a paravirtual /dev/kvm that does not boot a
    /// stock guest kernel).
    Tcg,
}

impl Accel {
    fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// How a guest is started: as whom, in which namespace, on which tap.
pub struct Boot<'a> {
    /// The namespace qemu runs in (the tap's).
    pub netns: &'a str,
    /// The tap, opened by qemu's `-netdev tap,ifname=…`.
    pub tap: &'a str,
    /// The guest NIC's MAC.
    pub mac: &'a str,
    /// uid and gid qemu runs as (the tap's owner and group).
    pub uid: u32,
    /// See `uid`.
    pub gid: u32,
    /// The names the guest resolves (in the domain of its lease).
    pub names: &'a [&'a str],
    /// `IP:PORT` the guest connects to once a second.
    pub server: &'a str,
    /// `-netdev tap`'s `vnet_hdr=`: `None` leaves qemu's default (on).
    pub vnet_hdr: Option<bool>,
}

/// A running qemu, killed on drop.
pub struct Guest {
    child: Child,
    /// The serial console's file.
    pub serial: PathBuf,
}

impl Image {
    /// KVM when it boots the guest here (one probe boot, its answer cached with the image),
    /// else TCG.
    pub fn accel(&self) -> Accel {
        let cached = self.dir.join("accel");
        if let Ok(a) = std::fs::read_to_string(&cached) {
            return if a.trim() == "kvm" {
                Accel::Kvm
            } else {
                Accel::Tcg
            };
        }
        let accel = if self.kvm_boots() {
            Accel::Kvm
        } else {
            Accel::Tcg
        };
        let _ = std::fs::write(&cached, accel.name());
        accel
    }

    /// Does a KVM guest reach its init within 15 s (a stock kernel takes about one)?
    fn kvm_boots(&self) -> bool {
        let usable = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        if !usable {
            return false;
        }
        let serial = self.dir.join("probe.serial");
        let _ = std::fs::remove_file(&serial);
        let mut child = Command::new("qemu-system-x86_64")
            .args(["-accel", "kvm"])
            .args(self.common_args(&serial, "nc.probe"))
            .args(["-nic", "none"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu");
        let ok = super::poll(Duration::from_secs(15), || {
            std::fs::read_to_string(&serial).is_ok_and(|s| s.contains("GUEST probe ok"))
        });
        let _ = child.kill();
        let _ = child.wait();
        ok
    }

    fn common_args(&self, serial: &Path, cmdline: &str) -> Vec<String> {
        [
            "-M",
            "pc",
            "-m",
            "256",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            &format!("file:{}", serial.display()),
            "-kernel",
            &self.kernel.display().to_string(),
            "-initrd",
            &self.initrd.display().to_string(),
            "-append",
            &format!("console=ttyS0 quiet panic=-1 {cmdline}"),
        ]
        .map(str::to_string)
        .to_vec()
    }

    /// Start the guest as `b.uid`:`b.gid` (plus the kvm group for KVM) in `b.netns`, its
    /// serial console in `dir` (writable by that user).
    pub fn boot(&self, b: &Boot<'_>, accel: Accel, dir: &Path) -> Guest {
        let serial = dir.join(format!("{}.serial", b.tap));
        let mut netdev = format!("tap,id=n0,ifname={},script=no,downscript=no", b.tap);
        if let Some(v) = b.vnet_hdr {
            netdev.push_str(if v { ",vnet_hdr=on" } else { ",vnet_hdr=off" });
        }
        let cmdline = format!("nc.names={} nc.server={}", b.names.join(","), b.server);
        let mut groups = String::from("--clear-groups");
        if accel == Accel::Kvm {
            let kvm = super::sh("getent group kvm | cut -d: -f3");
            groups = format!("--groups={}", kvm.trim());
        }
        let child = Command::new("ip")
            .args(["netns", "exec", b.netns, "setpriv"])
            .args([
                format!("--reuid={}", b.uid),
                format!("--regid={}", b.gid),
                groups,
            ])
            .args(["qemu-system-x86_64", "-accel", accel.name()])
            .args(self.common_args(&serial, &cmdline))
            .args(["-netdev", &netdev])
            .args([
                "-device",
                &format!("virtio-net-pci,netdev=n0,mac={}", b.mac),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu");
        Guest { child, serial }
    }
}

impl Guest {
    /// The whole `GUEST …` lines so far, without the prefix.
    pub fn lines(&self) -> Vec<String> {
        let console = std::fs::read_to_string(&self.serial).unwrap_or_default();
        // Only whole lines: the guest writes the console a byte at a time, so the last line
        // may be half written (seen: `lease ip=10.0.0.10 mask=24 ro`).
        let whole = console.rfind('\n').map_or("", |end| &console[..end]);
        whole
            .lines()
            .filter_map(|l| l.trim_end_matches('\r').split_once("GUEST "))
            .map(|(_, rest)| rest.to_string())
            .collect()
    }

    /// Wait (at most `limit`) for a line starting with `prefix`; panics with qemu's stderr
    /// and the console when it does not come, or qemu exits.
    pub fn wait_for(&mut self, prefix: &str, limit: Duration) -> String {
        let mut found = None;
        super::poll(limit, || {
            found = self.lines().into_iter().find(|l| l.starts_with(prefix));
            found.is_some() || self.child.try_wait().ok().flatten().is_some()
        });
        found.unwrap_or_else(|| panic!("no `GUEST {prefix}` line:\n{}", self.report()))
    }

    /// The fetches the guest reported so far: (number, answer).
    pub fn fetches(&self) -> Vec<(u32, String)> {
        self.lines()
            .iter()
            .filter_map(|l| l.strip_prefix("fetch "))
            .filter_map(|l| l.split_once(' '))
            .filter_map(|(n, a)| Some((n.parse().ok()?, a.to_string())))
            .collect()
    }

    /// qemu's stderr (once it has exited) and the whole console, for a failure message.
    pub fn report(&mut self) -> String {
        let mut err = String::new();
        if let Ok(Some(status)) = self.child.try_wait() {
            use std::io::Read;
            if let Some(mut e) = self.child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            err = format!("qemu exited ({status}): {err}");
        }
        let console = std::fs::read_to_string(&self.serial).unwrap_or_default();
        format!("{err}\n--- console\n{console}")
    }

    /// Stop qemu and wait until it is gone (its tap is closed then).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        self.stop();
    }
}
