#!/usr/bin/env pwsh
# IlgpuDdw build script. Run through the pinned PowerShell dotnet tool:
#   dotnet tool restore
#   dotnet pwsh build.ps1 <build|test|bench|publish> [extra arguments]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'bench', 'publish')]
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
}
