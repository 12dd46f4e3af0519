#!/usr/bin/env bash
# Takes IlgpuDdw the way a user does: packs the solution into a fresh folder feed, checks the packages' contents and
# metadata, restores, builds and runs tests/examples/CustomTrainer from that feed, and installs the ddw tool from it.
# Prints "PASS name" or "FAIL name" per check, then "N passed, N failed"; exits 1 if any check failed.
#   bash tests/examples/run-package-checks.sh
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
feed=$tmp/feed
passed=0
failed=0

# check NAME COMMAND...: runs COMMAND with its output in $tmp/out; on failure prints the output's last lines.
check() {
  local name=$1
  shift
  if "$@" >"$tmp/out" 2>&1; then
    echo "PASS $name"
    passed=$((passed + 1))
  else
    echo "FAIL $name"
    tail -n 40 "$tmp/out" | sed 's/^/    /'
    failed=$((failed + 1))
  fi
}

finish() {
  echo "${passed} passed, ${failed} failed"
  [ "$failed" -eq 0 ]
  exit
}

# Zip listing and member contents (unzip where installed, else Python's zipfile). Pipelines into grep below send
# its matches to /dev/null rather than using grep -q, which would stop reading early and fail the pipeline (pipefail).
zip_list() {
  if command -v unzip >/dev/null; then unzip -Z1 "$1"; else python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1"; fi
}
zip_cat() {
  if command -v unzip >/dev/null; then unzip -p "$1" "$2"; else python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' "$1" "$2"; fi
}

version=$(dotnet msbuild src/IlgpuDdw/IlgpuDdw.csproj -getProperty:Version 2>/dev/null | tr -d '[:space:]')
check "version from Directory.Build.props ($version)" grep -qE '^[0-9]+\.[0-9]+\.[0-9]+' <<<"$version"

# The same command as build.ps1 pack, into the fresh feed. It uses the usual package cache (the solution's own
# restore stays as it is); everything after it restores into an empty one, so that no IlgpuDdw of the same version
# left in a cache can stand in for the packages just made.
check "pack" dotnet pack IlgpuDdw.sln -c Release -o "$feed"
[ "$failed" -eq 0 ] || finish
export NUGET_PACKAGES=$tmp/nuget-packages

packages_are() {
  [ "$(cd "$feed" && ls ./*.nupkg | sed 's:^\./::' | LC_ALL=C sort | tr '\n' ' ')" = "$1" ]
}
check "pack: exactly IlgpuDdw, IlgpuDdw.Kernels and ddw" \
  packages_are "IlgpuDdw.$version.nupkg IlgpuDdw.Kernels.$version.nupkg ddw.$version.nupkg "

nuspec() { zip_cat "$feed/$1.$version.nupkg" "$1.nuspec"; }
has_readme() {
  zip_list "$feed/$1.$version.nupkg" | grep -x 'README.md' >/dev/null && nuspec "$1" | grep '<readme>README.md</readme>' >/dev/null
}
has_metadata() {
  local spec
  spec=$(nuspec "$1")
  grep -q '<license type="expression">MIT</license>' <<<"$spec" &&
    grep -q '<repository type="git" url="https://github.com/ilgpuddw/ilgpuddw"' <<<"$spec" &&
    grep -q "<version>$version</version>" <<<"$spec" &&
    grep -q '<description>..*</description>' <<<"$spec" &&
    grep -q '<authors>..*</authors>' <<<"$spec" &&
    grep -q '<tags>..*</tags>' <<<"$spec"
}
has_symbols() {
  [ -f "$feed/$1.$version.snupkg" ] && zip_list "$feed/$1.$version.snupkg" | grep '\.pdb$' >/dev/null
}
no_generators() {
  ! nuspec "$1" | grep -i 'Generators' >/dev/null && ! zip_list "$feed/$1.$version.nupkg" | grep -i 'Generators' >/dev/null
}
for package in IlgpuDdw.Kernels IlgpuDdw ddw; do
  check "$package: README.md in the package" has_readme "$package"
  check "$package: id, version, description, MIT licence expression, repository" has_metadata "$package"
  check "$package: symbols package (.snupkg with the pdbs)" has_symbols "$package"
  check "$package: no source generator inside or as a dependency" no_generators "$package"
done

depends_on_kernels() {
  nuspec IlgpuDdw | grep "<dependency id=\"IlgpuDdw.Kernels\" version=\"$version\"" >/dev/null
}
check "IlgpuDdw: depends on IlgpuDdw.Kernels $version" depends_on_kernels
is_tool() {
  nuspec ddw | grep '<packageType name="DotnetTool"' >/dev/null &&
    zip_cat "$feed/ddw.$version.nupkg" tools/net10.0/any/DotnetToolSettings.xml | grep '<Command Name="ddw"' >/dev/null
}
check "ddw: a .NET tool with the command ddw" is_tool

# The example, restored from the feed (plus the configured sources, for ILGPU) with its build output outside the tree.
example=tests/examples/CustomTrainer
check "example: restore from the feed and build" \
  dotnet build "$example" -c Release -p:IlgpuDdwFeed="$feed" --artifacts-path "$tmp/example"
check "example: IlgpuDdw and IlgpuDdw.Kernels came from the feed" bash -c \
  "cmp '$NUGET_PACKAGES/ilgpuddw/$version/ilgpuddw.$version.nupkg' '$feed/IlgpuDdw.$version.nupkg' &&
   cmp '$NUGET_PACKAGES/ilgpuddw.kernels/$version/ilgpuddw.kernels.$version.nupkg' '$feed/IlgpuDdw.Kernels.$version.nupkg'"
steps=3
run_example() {
  dotnet "$tmp/example/bin/CustomTrainer/release/CustomTrainer.dll" "$steps" | tee "$tmp/example.out" &&
    [ "$(grep -c '^step [0-9]*/[0-9]*: loss [0-9.]*,' "$tmp/example.out")" -eq "$steps" ]
}
check "example: $steps training steps with a finite loss" run_example
sed 's/^/    /' "$tmp/example.out" 2>/dev/null

# The tool, installed from the feed into a folder of its own.
tools=$tmp/tools
check "tool: dotnet tool install --add-source FEED ddw" \
  dotnet tool install --tool-path "$tools" --add-source "$feed" ddw --version "$version"
check "tool: installed from the feed" cmp "$tools/.store/ddw/$version/ddw/$version/ddw.$version.nupkg" "$feed/ddw.$version.nupkg"
check "tool: ddw info" "$tools/ddw" info
check "tool: ddw --help" "$tools/ddw" --help
version_is() { "$tools/ddw" --version | grep "^$version" >/dev/null; }
check "tool: ddw --version prints $version" version_is

finish
