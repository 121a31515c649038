using AttnPortal.Cli;

return await Commands.RunAsync(args);
