#!/usr/bin/env pwsh
# IlgpuDdw build script. Run through the pinned PowerShell dotnet tool:
#   dotnet tool restore
#   dotnet pwsh build.ps1 <build|test|bench|publish|pack> [extra arguments]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'bench', 'publish', 'pack')]
    [string] $Target = 'build',

    [Parameter(Position = 1, ValueFromRemainingArguments = $true)]
    [string[]] $Rest = @()
)

$ErrorActionPreference = 'Stop'
Set-Location $PSScriptRoot

function Invoke-Dotnet([string[]] $Arguments) {
    Write-Host "dotnet $($Arguments -join ' ')"
    & dotnet @Arguments
    if ($LASTEXITCODE -ne 0) { throw "dotnet $($Arguments[0]) failed with exit code $LASTEXITCODE" }
}

switch ($Target) {
    'build' { Invoke-Dotnet (@('build', 'IlgpuDdw.sln', '-c', 'Release') + $Rest) }
    'test' { Invoke-Dotnet (@('test', 'IlgpuDdw.sln', '-c', 'Release', '--blame-crash') + $Rest) }
    'bench' {
        $filter = if ($Rest.Count -gt 0) { $Rest } else { @('--filter', '*') }
        Invoke-Dotnet (@('run', '-c', 'Release', '--project', 'bench/IlgpuDdw.Bench', '--') + $filter)
    }
    'publish' {
        # Self-contained single-file ddw for linux-x64: runs on a GPU machine without .NET installed (the .pdb files
        # beside it only add line numbers to stack traces). bench/gpu-check.sh runs it there.
        $out = Join-Path $PSScriptRoot 'publish/linux-x64'
        Invoke-Dotnet (@('publish', 'src/IlgpuDdw.Cli', '-c', 'Release', '-r', 'linux-x64', '--self-contained',
                '-p:PublishSingleFile=true', '-p:EnableCompressionInSingleFile=true',
                '-p:IncludeNativeLibrariesForSelfExtract=true', '-p:PublishDocumentationFile=false',
                '-p:PublishReferencesDocumentationFiles=false', '-o', $out) + $Rest)
        Write-Host "published: $(Join-Path $out 'ddw')"
    }
    'pack' {
        # IlgpuDdw, IlgpuDdw.Kernels and the ddw tool (with .snupkg symbols) into a folder feed. The version is fixed
        # in Directory.Build.props, so copies of that version cached by an earlier restore would shadow the new
        # packages: remove them from the global packages folder.
        $out = Join-Path $PSScriptRoot 'artifacts/packages'
        $version = (& dotnet msbuild src/IlgpuDdw/IlgpuDdw.csproj -getProperty:Version).Trim()
        if ($LASTEXITCODE -ne 0) { throw "could not read Version from Directory.Build.props" }
        Invoke-Dotnet (@('pack', 'IlgpuDdw.sln', '-c', 'Release', '-o', $out) + $Rest)
        $cache = ((& dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
        foreach ($id in 'ilgpuddw', 'ilgpuddw.kernels', 'ddw') {
            $cached = Join-Path $cache "$id/$version"
            if (Test-Path $cached) {
                Write-Host "removing cached $cached"
                Remove-Item -Recurse -Force $cached
            }
        }
        Write-Host "packages: $out (version $version)"
    }
}
