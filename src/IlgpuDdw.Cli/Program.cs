using IlgpuDdw.Cli;

return CliApp.Run(args);
