using IlgpuDdw.Cli;

return MpiRun.Start(args);
